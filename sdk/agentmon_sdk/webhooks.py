"""HTTP POST of JSON with an optional HMAC signature: shared by alert delivery and the telemetry
SDK's webhook exporter. Standard library only, so that instrumented agents import nothing heavy."""

from __future__ import annotations

import hashlib
import hmac
import urllib.request

SIGNATURE_HEADER = "X-Agentmon-Signature"


def signature(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact body bytes, as GitHub and Stripe sign webhooks."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post_json(url: str, body: bytes, headers: dict | None = None, timeout: float = 10.0) -> None:
    """POST `body` (JSON bytes); raises OSError (urllib's errors included) unless the reply is 2xx."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:
        if not 200 <= response.status < 300:
            raise OSError(f"HTTP {response.status}")
