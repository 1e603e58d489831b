"""GPU status: an NVML source, a file-backed fake (gpu_fake.py), a ~1 Hz monitor thread, and
the per-process GPU memory the runner records as an experiment's peak.

Sources never raise from `read()`: a machine without an NVIDIA driver is a normal state, told to
the user as `GpuStatus(available=False, message="No NVIDIA GPU: ...")`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

import msgspec
import psutil

from .gpu_fake import FAKE_ENV, FakeSource
from .protocol import GpuInfo, GpuProcess, GpuStatus

__all__ = [
    "FAKE_ENV",
    "FakeSource",
    "GpuMonitor",
    "GpuSource",
    "NvmlSource",
    "gpu_memory_of",
    "open_source",
]

log = logging.getLogger(__name__)

MIB = 1024 * 1024


class GpuSource(Protocol):
    def read(self) -> GpuStatus:
        """The current status; never raises."""
        ...

    def close(self) -> None: ...


def _text(value: str | bytes) -> str:
    # Old nvidia-ml-py releases return bytes, newer ones str.
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _reason(e: BaseException) -> str:
    return str(e) or type(e).__name__


class NvmlSource:
    """`GpuSource` over NVML. `nvml` is the `pynvml` module, or a stand-in with its interface."""

    def __init__(self, nvml: Any = None) -> None:
        self._nvml = nvml
        self._initialised = False
        self._names: dict[int, str] = {}
        # Set when NVML cannot be used at all: computed once, returned by every read.
        self._unavailable: GpuStatus | None = None
        self._message = ""
        self._init()

    def _init(self) -> None:
        if self._nvml is None:
            try:
                import pynvml
            except ImportError:
                self._set_unavailable("nvidia-ml-py is not installed")
                return
            self._nvml = pynvml
        try:
            self._nvml.nvmlInit()
        except Exception as e:
            self._set_unavailable(_reason(e))
            return
        self._initialised = True
        try:
            count = self._nvml.nvmlDeviceGetCount()
        except Exception as e:
            self._set_unavailable(_reason(e))
            return
        if count == 0:
            self._set_unavailable("no devices found")
            return
        try:
            driver = f", driver {_text(self._nvml.nvmlSystemGetDriverVersion())}"
        except Exception:
            driver = ""
        self._message = f"{count} NVIDIA GPU{'s' if count > 1 else ''}{driver}"

    def _set_unavailable(self, reason: str) -> None:
        log.info("GPU status off: %s", reason)
        self._unavailable = GpuStatus(available=False, message=f"No NVIDIA GPU: {reason}")
        self.close()

    def read(self) -> GpuStatus:
        if self._unavailable is not None:
            return self._unavailable
        try:
            count = self._nvml.nvmlDeviceGetCount()
        except Exception as e:
            return GpuStatus(available=False, message=f"NVIDIA GPU error: {_reason(e)}")
        gpus = [self._device(i) for i in range(count)]
        seen = {p.pid for g in gpus for p in g.processes}
        # Forget names of processes gone from every GPU, so a reused pid is named afresh.
        self._names = {pid: name for pid, name in self._names.items() if pid in seen}
        return GpuStatus(available=True, message=self._message, gpus=gpus)

    def _device(self, index: int) -> GpuInfo:
        nvml = self._nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as e:
            return GpuInfo(index, f"GPU {index} ({_reason(e)})", 0.0, 0.0, 0.0)

        def field(get: Callable[[], Any], default: Any) -> Any:
            # One unsupported or failing query degrades its field, not the read.
            try:
                return get()
            except Exception:
                return default

        name = field(lambda: _text(nvml.nvmlDeviceGetName(handle)), f"GPU {index}")
        util = field(lambda: float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu), 0.0)
        mem = field(lambda: nvml.nvmlDeviceGetMemoryInfo(handle), None)
        temp = field(
            lambda: float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU)), None
        )
        power = field(lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000.0, None)
        return GpuInfo(
            index=index,
            name=name,
            utilization=util,
            memory_used_mib=mem.used / MIB if mem is not None else 0.0,
            memory_total_mib=mem.total / MIB if mem is not None else 0.0,
            temperature_c=temp,
            power_w=power,
            processes=self._processes(handle, field),
        )

    def _processes(
        self, handle: Any, field: Callable[[Callable[[], Any], Any], Any]
    ) -> list[GpuProcess]:
        nvml = self._nvml
        used: dict[int, float] = {}
        for query in (
            nvml.nvmlDeviceGetComputeRunningProcesses,
            nvml.nvmlDeviceGetGraphicsRunningProcesses,
        ):
            for p in field(lambda q=query: q(handle), []):
                # None: the driver cannot tell (WDDM, some vGPU setups); counted as 0.
                mib = (p.usedGpuMemory or 0) / MIB
                # A process in both lists is one process ("C+G"), not two.
                used[p.pid] = max(used.get(p.pid, 0.0), mib)
        return [GpuProcess(pid, mib, self._name(pid)) for pid, mib in sorted(used.items())]

    def _name(self, pid: int) -> str:
        if pid not in self._names:
            try:
                self._names[pid] = psutil.Process(pid).name()
            except (psutil.Error, OSError):
                # Another pid namespace (containers) or already gone.
                self._names[pid] = ""
        return self._names[pid]

    def close(self) -> None:
        if self._initialised:
            self._initialised = False
            try:
                self._nvml.nvmlShutdown()
            except Exception:
                pass


def open_source(environ: Mapping[str, str] | None = None, root: Path | None = None) -> GpuSource:
    """The fake source if `AUTORESEARCH_FAKE_GPU` names a file, else the Ray cluster's GPUs
    when `root`'s config runs its experiments there, else NVML."""
    path = (os.environ if environ is None else environ).get(FAKE_ENV)
    if path:
        return FakeSource(path)
    cluster = cluster_source(root, environ) if root is not None else None
    return cluster if cluster is not None else NvmlSource()


def cluster_source(root: Path, environ: Mapping[str, str] | None = None) -> GpuSource | None:
    """The Ray cluster's GPUs when `root`'s config runs its experiments there, unless the fake
    source is set (it stands for every GPU, the cluster's too)."""
    if (os.environ if environ is None else environ).get(FAKE_ENV):
        return None
    from .ray_gpu import source_for  # the Ray client and git only when a root is asked about

    return source_for(root)


class GpuMonitor:
    """Polls a source on a daemon thread; `on_change` runs on that thread, only on change.

    The monitor owns the source: `stop()` closes it. Other threads read `latest()`, never the
    source itself, since sources are not thread-safe.
    """

    def __init__(
        self,
        source: GpuSource,
        on_change: Callable[[GpuStatus], None] | None = None,
        interval: float = 1.0,
    ) -> None:
        self._source = source
        self._on_change = on_change
        self._interval = interval
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._latest = GpuStatus(available=False, message="GPU status not read yet")

    def start(self) -> GpuMonitor:
        """Reads once before returning, so `latest()` is real at once; on_change follows."""
        if self._thread is None:
            self._latest = self._source.read()
            self._thread = threading.Thread(target=self._run, name="gpu-monitor", daemon=True)
            self._thread.start()
        return self

    def latest(self) -> GpuStatus:
        return self._latest

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._source.close()

    def _run(self) -> None:
        encode = msgspec.json.Encoder().encode
        last: bytes | None = None
        status = self._latest
        while True:
            current = encode(status)
            if current != last:
                last = current
                self._latest = status
                if self._on_change is not None:
                    try:
                        self._on_change(status)
                    except Exception:
                        log.exception("GPU status listener failed")
            # Event wait, not sleep: stop() wakes it at once.
            if self._stopping.wait(self._interval):
                return
            status = self._source.read()


def gpu_memory_of(pids: Iterable[int], status: GpuStatus) -> float:
    """MiB of GPU memory used by these pids, summed across GPUs."""
    wanted = set(pids)
    return sum(p.used_mib for g in status.gpus for p in g.processes if p.pid in wanted)
