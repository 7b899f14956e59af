"""PerformanceMonitor: system and process metrics sampled with psutil into gauges of a
MetricsRegistry (SPEC §3.1 counts them as metrics): CPU (system and this process), memory (RSS and
VMS of this process, system used percent), disk and network I/O (cumulative bytes), and the
number of processes. The collector samples it from its background thread, never the agent's."""

from __future__ import annotations

import time

import psutil

from agentmon_sdk.metrics import MetricsRegistry

GAUGES = {
    "system_cpu_percent": ("percent", "CPU use of the whole machine since the last sample"),
    "process_cpu_percent": ("percent", "CPU use of this process since the last sample"),
    "process_memory_rss_bytes": ("bytes", "resident memory of this process"),
    "process_memory_vms_bytes": ("bytes", "virtual memory of this process"),
    "system_memory_used_percent": ("percent", "memory in use on the machine"),
    "system_disk_read_bytes": ("bytes", "bytes read from disks since boot"),
    "system_disk_write_bytes": ("bytes", "bytes written to disks since boot"),
    "system_network_sent_bytes": ("bytes", "bytes sent on all interfaces since boot"),
    "system_network_recv_bytes": ("bytes", "bytes received on all interfaces since boot"),
    "system_process_count": ("processes", "processes running on the machine"),
}


class PerformanceMonitor:
    def __init__(
        self, registry: MetricsRegistry | None = None, interval_s: float = 15.0, labels: dict | None = None
    ):
        self.registry = registry or MetricsRegistry()
        self.interval_s = interval_s
        self.labels = dict(labels or {})
        self._gauges = {
            name: self.registry.gauge(name, text, self.labels, unit) for name, (unit, text) in GAUGES.items()
        }
        self._process = psutil.Process()
        self._process.cpu_percent(None)  # the first call only starts the measurement
        psutil.cpu_percent(None)
        self._last = 0.0

    def sample(self) -> dict[str, float]:
        """Read every gauge now; returns what was read (a source psutil cannot read is left out)."""
        values: dict[str, float] = {}
        readers = {
            "system_cpu_percent": lambda: psutil.cpu_percent(None),
            "process_cpu_percent": lambda: self._process.cpu_percent(None),
            "process_memory_rss_bytes": lambda: self._process.memory_info().rss,
            "process_memory_vms_bytes": lambda: self._process.memory_info().vms,
            "system_memory_used_percent": lambda: psutil.virtual_memory().percent,
            "system_disk_read_bytes": lambda: psutil.disk_io_counters().read_bytes,
            "system_disk_write_bytes": lambda: psutil.disk_io_counters().write_bytes,
            "system_network_sent_bytes": lambda: psutil.net_io_counters().bytes_sent,
            "system_network_recv_bytes": lambda: psutil.net_io_counters().bytes_recv,
            "system_process_count": lambda: len(psutil.pids()),
        }
        for name, read in readers.items():
            try:
                value = float(read())
            except (psutil.Error, OSError, AttributeError):  # no disks in a container: None.read_bytes
                continue
            values[name] = value
            self._gauges[name].set(value, **self.labels)
        self._last = time.monotonic()
        return values

    def due(self) -> bool:
        return time.monotonic() - self._last >= self.interval_s
