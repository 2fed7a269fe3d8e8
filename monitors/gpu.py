"""GPU and host exporter: NVML (nvidia-ml-py) with dcgm-exporter's metric names and labels, plus host and
server-process CPU/memory through psutil. `tollgate monitor gpu --port 9400` serves it for Prometheus or
for `tollgate monitor --target 127.0.0.1:9400`. Without an NVIDIA driver it says so once and exports
host metrics only.

Units follow dcgm-exporter: framebuffer in MiB, power in W, clocks in MHz, temperature in C, energy in mJ.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator

import psutil
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from tollgate.contracts import server_metrics as m

log = logging.getLogger("tollgate.gpu")

LABELS = ["gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname"]
FIELDS = {  # dcgm-exporter name: help
    m.DCGM_GPU_UTIL: "GPU utilization (in %).",
    m.DCGM_MEM_COPY_UTIL: "Memory utilization (in %).",
    m.DCGM_FB_USED: "Framebuffer memory used (in MiB).",
    m.DCGM_FB_FREE: "Framebuffer memory free (in MiB).",
    m.DCGM_FB_TOTAL: "Framebuffer memory total (in MiB).",
    m.DCGM_POWER: "Power draw (in W).",
    m.DCGM_TEMP: "GPU temperature (in C).",
    m.DCGM_SM_CLOCK: "SM clock frequency (in MHz).",
    m.DCGM_MEM_CLOCK: "Memory clock frequency (in MHz).",
}
ENERGY = m.DCGM_ENERGY


READERS = {  # dcgm-exporter name: how NVML reads it (nvml module, device handle)
    m.DCGM_GPU_UTIL: lambda nv, h: nv.nvmlDeviceGetUtilizationRates(h).gpu,
    m.DCGM_MEM_COPY_UTIL: lambda nv, h: nv.nvmlDeviceGetUtilizationRates(h).memory,
    m.DCGM_FB_USED: lambda nv, h: nv.nvmlDeviceGetMemoryInfo(h).used / 2**20,
    m.DCGM_FB_FREE: lambda nv, h: nv.nvmlDeviceGetMemoryInfo(h).free / 2**20,
    m.DCGM_FB_TOTAL: lambda nv, h: nv.nvmlDeviceGetMemoryInfo(h).total / 2**20,
    m.DCGM_POWER: lambda nv, h: nv.nvmlDeviceGetPowerUsage(h) / 1000.0,
    m.DCGM_TEMP: lambda nv, h: nv.nvmlDeviceGetTemperature(h, nv.NVML_TEMPERATURE_GPU),
    m.DCGM_SM_CLOCK: lambda nv, h: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_SM),
    m.DCGM_MEM_CLOCK: lambda nv, h: nv.nvmlDeviceGetClockInfo(h, nv.NVML_CLOCK_MEM),
    ENERGY: lambda nv, h: nv.nvmlDeviceGetTotalEnergyConsumption(h),
}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlReader:
    """Per-GPU readings through NVML; `available` is False (with `reason`) when there is no GPU/driver."""

    def __init__(self) -> None:
        self.available, self.reason = False, ""
        try:
            import pynvml

            pynvml.nvmlInit()
            self.nvml = pynvml
            self.count = pynvml.nvmlDeviceGetCount()
            self.available = self.count > 0
            self.reason = "" if self.available else "NVML found no GPU"
        except Exception as exc:  # NVMLError_LibraryNotFound, DriverNotLoaded, ImportError...
            self.reason = f"{type(exc).__name__}: {exc}"

    def read(self) -> Iterator[tuple[list[str], dict[str, float]]]:
        nv = self.nvml
        host = socket.gethostname()
        for i in range(self.count):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            labels = [
                str(i), _text(nv.nvmlDeviceGetUUID(h)), _text(nv.nvmlDeviceGetPciInfo(h).busId),
                f"nvidia{nv.nvmlDeviceGetMinorNumber(h)}", _text(nv.nvmlDeviceGetName(h)), host,
            ]  # fmt: skip
            values: dict[str, float] = {}
            for name, fn in READERS.items():
                try:
                    values[name] = float(fn(nv, h))
                except nv.NVMLError:  # not supported on this board (e.g. power on some GPUs)
                    continue
            yield labels, values


class GpuHostCollector:
    """prometheus_client collector: dcgm-style GPU gauges, host and (optionally) one process."""

    def __init__(self, pid: int | None = None, nvml: NvmlReader | None = None) -> None:
        self.nvml = nvml or NvmlReader()
        if not self.nvml.available:
            log.warning("no NVIDIA GPU available (%s); exporting host metrics only", self.nvml.reason)
        self.process = psutil.Process(pid) if pid else None
        psutil.cpu_percent(None)  # the first call only primes the counters
        if self.process is not None:
            self.process.cpu_percent(None)

    def collect(self) -> Iterator[Metric]:
        if self.nvml.available:
            families = {n: GaugeMetricFamily(n, h, labels=LABELS) for n, h in FIELDS.items()}
            energy = CounterMetricFamily(
                ENERGY, "Total energy consumption since boot (in mJ).", labels=LABELS
            )
            for labels, values in self.nvml.read():
                for name, value in values.items():
                    (energy if name == ENERGY else families[name]).add_metric(labels, value)
            yield from (f for f in families.values() if f.samples)
            if energy.samples:
                yield energy
        yield GaugeMetricFamily(m.HOST_CPU, "Host CPU utilization (in %).", psutil.cpu_percent(None))
        mem = psutil.virtual_memory()
        yield GaugeMetricFamily(m.HOST_MEM_USED, "Host memory in use (bytes).", mem.total - mem.available)
        yield GaugeMetricFamily(m.HOST_MEM_TOTAL, "Host memory total (bytes).", mem.total)
        yield GaugeMetricFamily(
            m.GPU_AVAILABLE,
            "1 when NVML found at least one GPU.",
            1.0 if self.nvml.available else 0.0,
        )
        if self.process is not None:
            labels = ["pid", "name"]
            values = [str(self.process.pid), self.process.name()]
            try:
                cpu, rss = self.process.cpu_percent(None), self.process.memory_info().rss
            except psutil.Error:
                return
            g = GaugeMetricFamily(m.PROCESS_CPU, "Watched process CPU (in %).", labels=labels)
            g.add_metric(values, cpu)
            yield g
            g = GaugeMetricFamily(m.PROCESS_RSS, "Watched process RSS.", labels=labels)
            g.add_metric(values, rss)
            yield g


def serve(port: int, host: str = "127.0.0.1", pid: int | None = None) -> tuple[object, CollectorRegistry]:
    """Start the exporter's HTTP server in a background thread; returns (server, registry)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GpuHostCollector(pid))
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server, registry
