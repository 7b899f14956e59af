"""EventEmitter: handlers subscribed to named events (`*` for all). A handler that raises is
logged and counted in `errors`, never propagated: instrumentation must not break the agent."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("agentmon.telemetry")
Handler = Callable[[str, dict[str, Any]], None]


class EventEmitter:
    def __init__(self):
        self._handlers: dict[str, list[Handler]] = {}
        self._lock = threading.Lock()
        self.errors = 0

    def on(self, name: str, handler: Handler) -> Handler:
        """Subscribe `handler(name, data)` to `name` (or `*`); returns it, so it works as a decorator
        via `emitter.on("llm_call", ...)`."""
        with self._lock:
            self._handlers.setdefault(name, []).append(handler)
        return handler

    def off(self, name: str, handler: Handler) -> None:
        with self._lock:
            if handler in self._handlers.get(name, []):
                self._handlers[name].remove(handler)

    def has_handlers(self, name: str) -> bool:
        return bool(self._handlers.get(name) or self._handlers.get("*"))

    def emit(self, name: str, data: dict[str, Any]) -> int:
        """Call every handler of `name` and of `*`; returns how many ran without error."""
        handlers = [*self._handlers.get(name, ()), *self._handlers.get("*", ())]
        ok = 0
        for handler in handlers:
            try:
                handler(name, data)
                ok += 1
            except Exception as exc:  # a user's handler: count it, log it, carry on
                self.errors += 1
                log.warning("telemetry event handler %r failed on %s: %s", handler, name, exc)
        return ok
