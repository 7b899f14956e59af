"""Counter, Gauge, Histogram and Summary in a MetricsRegistry, as in Prometheus' data model.

Updates are cheap (a lock and an addition) and never raise for a bad label set: a metric used
with other label names than it was declared with counts the mistake in `registry.errors` and
moves on, so instrumentation cannot break the agent. `collect()` turns the current values into
native metric records (SPEC §3.1): counters and gauges as one point per label set, histograms as
`_bucket` (label `le`), `_sum` and `_count`, summaries as quantiles (label `quantile`, over a
bounded reservoir of recent observations), `_sum` and `_count`.
"""

from __future__ import annotations

import bisect
import random
import threading
from collections.abc import Iterable

DEFAULT_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)
SUMMARY_QUANTILES = (0.5, 0.9, 0.95, 0.99)
RESERVOIR = 1024


class Metric:
    kind = "gauge"

    def __init__(self, name: str, description: str = "", labels: Iterable[str] = (), unit: str | None = None,
                 registry: MetricsRegistry | None = None):  # fmt: skip
        self.name = name
        self.description = description
        self.label_names = tuple(labels)
        self.unit = unit
        self._lock = threading.Lock()
        self._registry = registry

    def _key(self, labels: dict) -> tuple | None:
        if len(labels) != len(self.label_names) or any(n not in labels for n in self.label_names):
            if self._registry is not None:
                self._registry.errors += 1
            return None
        return tuple(str(labels[n]) for n in self.label_names)

    def _labels(self, key: tuple) -> dict:
        return dict(zip(self.label_names, key, strict=True))

    def samples(self) -> list[tuple[str, dict, float]]:
        raise NotImplementedError


class Counter(Metric):
    """A total that only goes up (requests, tokens, errors)."""

    kind = "counter"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._values: dict[tuple, float] = {}

    def inc(self, amount: float = 1.0, **labels) -> None:
        key = self._key(labels)
        if key is None or amount < 0:
            return
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount

    def value(self, **labels) -> float:
        return self._values.get(self._key(labels), 0.0)

    def samples(self):
        with self._lock:
            return [(self.name, self._labels(k), v) for k, v in self._values.items()]


class Gauge(Metric):
    """A value that goes up and down (queue depth, memory, active sessions)."""

    kind = "gauge"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._values: dict[tuple, float] = {}

    def set(self, value: float, **labels) -> None:
        key = self._key(labels)
        if key is not None:
            with self._lock:
                self._values[key] = float(value)

    def inc(self, amount: float = 1.0, **labels) -> None:
        key = self._key(labels)
        if key is not None:
            with self._lock:
                self._values[key] = self._values.get(key, 0.0) + amount

    def dec(self, amount: float = 1.0, **labels) -> None:
        self.inc(-amount, **labels)

    def value(self, **labels) -> float | None:
        return self._values.get(self._key(labels))

    def samples(self):
        with self._lock:
            return [(self.name, self._labels(k), v) for k, v in self._values.items()]


class Histogram(Metric):
    """Observations counted into cumulative buckets (latencies in ms by default)."""

    kind = "histogram"

    def __init__(self, *args, buckets: Iterable[float] = DEFAULT_BUCKETS, **kwargs):
        super().__init__(*args, **kwargs)
        self.buckets = tuple(sorted(float(b) for b in buckets))
        self._state: dict[tuple, list] = {}  # key -> [counts per bucket + inf, sum, count]

    def observe(self, value: float, **labels) -> None:
        key = self._key(labels)
        if key is None:
            return
        index = bisect.bisect_left(self.buckets, value)
        with self._lock:
            state = self._state.get(key)
            if state is None:
                state = self._state[key] = [[0] * (len(self.buckets) + 1), 0.0, 0]
            state[0][index] += 1
            state[1] += value
            state[2] += 1

    def samples(self):
        out = []
        with self._lock:
            for key, (counts, total, count) in self._state.items():
                labels = self._labels(key)
                running = 0
                for bound, n in zip((*self.buckets, float("inf")), counts, strict=True):
                    running += n
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    out.append((f"{self.name}_bucket", {**labels, "le": le}, float(running)))
                out.append((f"{self.name}_sum", labels, total))
                out.append((f"{self.name}_count", labels, float(count)))
        return out


class Summary(Metric):
    """Observations summarised as quantiles of the most recent `RESERVOIR` values (reservoir
    sampling keeps it bounded), plus their sum and count."""

    kind = "summary"

    def __init__(self, *args, quantiles: Iterable[float] = SUMMARY_QUANTILES, **kwargs):
        super().__init__(*args, **kwargs)
        self.quantiles = tuple(quantiles)
        self._state: dict[tuple, list] = {}  # key -> [reservoir, sum, count]
        self._rng = random.Random(0)

    def observe(self, value: float, **labels) -> None:
        key = self._key(labels)
        if key is None:
            return
        with self._lock:
            state = self._state.get(key)
            if state is None:
                state = self._state[key] = [[], 0.0, 0]
            state[1] += value
            state[2] += 1
            if len(state[0]) < RESERVOIR:
                state[0].append(value)
            else:
                slot = self._rng.randrange(state[2])
                if slot < RESERVOIR:
                    state[0][slot] = value

    def quantile(self, q: float, **labels) -> float | None:
        state = self._state.get(self._key(labels))
        return _quantile(sorted(state[0]), q) if state and state[0] else None

    def samples(self):
        out = []
        with self._lock:
            for key, (reservoir, total, count) in self._state.items():
                labels = self._labels(key)
                ordered = sorted(reservoir)
                for q in self.quantiles:
                    out.append((self.name, {**labels, "quantile": f"{q:g}"}, _quantile(ordered, q)))
                out.append((f"{self.name}_sum", labels, total))
                out.append((f"{self.name}_count", labels, float(count)))
        return out


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), without numpy."""
    if len(ordered) == 1:
        return float(ordered[0])
    position = q * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (position - low))


class MetricsRegistry:
    """Metrics by name. Asking twice for the same name returns the same metric; asking for it
    as another type is a programming error and raises (at set-up, not while recording)."""

    def __init__(self):
        self._metrics: dict[str, Metric] = {}
        self._lock = threading.Lock()
        self.errors = 0

    def _get(
        self, cls, name: str, description: str, labels: Iterable[str], unit: str | None, **kwargs
    ) -> Metric:
        with self._lock:
            metric = self._metrics.get(name)
            if metric is None:
                metric = self._metrics[name] = cls(name, description, labels, unit, registry=self, **kwargs)
            elif type(metric) is not cls:
                raise ValueError(f"metric {name!r} is a {type(metric).__name__}, not a {cls.__name__}")
            return metric

    def counter(
        self, name: str, description: str = "", labels: Iterable[str] = (), unit: str | None = None
    ) -> Counter:
        return self._get(Counter, name, description, labels, unit)

    def gauge(
        self, name: str, description: str = "", labels: Iterable[str] = (), unit: str | None = None
    ) -> Gauge:
        return self._get(Gauge, name, description, labels, unit)

    def histogram(self, name: str, description: str = "", labels: Iterable[str] = (), unit: str | None = None,
                  buckets: Iterable[float] = DEFAULT_BUCKETS) -> Histogram:  # fmt: skip
        return self._get(Histogram, name, description, labels, unit, buckets=buckets)

    def summary(self, name: str, description: str = "", labels: Iterable[str] = (), unit: str | None = None,
                quantiles: Iterable[float] = SUMMARY_QUANTILES) -> Summary:  # fmt: skip
        return self._get(Summary, name, description, labels, unit, quantiles=quantiles)

    def metrics(self) -> list[Metric]:
        with self._lock:
            return list(self._metrics.values())

    def collect(self, time_iso: str) -> list[dict]:
        """Native metric records of every current value, stamped `time_iso`."""
        records = []
        for metric in self.metrics():
            for name, labels, value in metric.samples():
                record = {"type": "metric", "name": name, "value": value, "time": time_iso,
                          "metric_kind": metric.kind, "labels": labels}  # fmt: skip
                if metric.unit:
                    record["unit"] = metric.unit
                records.append(record)
        return records
