"""GPU status: fake file source, NVML source, monitor thread, per-process memory."""

from __future__ import annotations

import os
import queue
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec
import psutil
import pynvml
import pytest

from autoresearch.gpu import (
    FAKE_ENV,
    FakeSource,
    GpuMonitor,
    NvmlSource,
    gpu_memory_of,
    open_source,
)
from autoresearch.protocol import GpuInfo, GpuProcess, GpuStatus

MIB = 1024 * 1024


def status(utilization: float = 10.0, procs: list[GpuProcess] | None = None) -> GpuStatus:
    gpu = GpuInfo(0, "Fake H100", utilization, 1000.0, 81559.0, 40.0, 100.0, procs or [])
    return GpuStatus(available=True, message="1 fake GPU", gpus=[gpu])


def write(path: Path, value: GpuStatus | bytes) -> None:
    # Atomic replace, as the e2e suite does: a reader never sees half a file.
    data = value if isinstance(value, bytes) else msgspec.json.encode(value)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# ---- fake source ------------------------------------------------------------------------------


def test_fake_source_reads_the_file_and_picks_up_changes(tmp_path: Path) -> None:
    path = tmp_path / "gpu.json"
    write(path, status(10.0))
    source = FakeSource(path)
    assert source.read() == status(10.0)
    # Same size, written at once: still noticed.
    write(path, status(90.0))
    assert source.read().gpus[0].utilization == 90.0


def test_fake_source_missing_file_is_unavailable_then_recovers(tmp_path: Path) -> None:
    path = tmp_path / "absent.json"
    source = FakeSource(path)
    got = source.read()
    assert not got.available
    assert str(path) in got.message
    assert "No such file" in got.message
    write(path, status())
    assert source.read().available


@pytest.mark.parametrize(
    ("content", "problem"),
    [(b"{not json", "malformed"), (b'{"available": "yes"}', "malformed"), (b"", "malformed")],
)
def test_fake_source_malformed_file_is_unavailable(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "gpu.json"
    write(path, content)
    got = FakeSource(path).read()
    assert got == GpuStatus(available=False, message=got.message, gpus=[])
    assert str(path) in got.message
    assert problem in got.message


def test_open_source_uses_the_fake_when_the_env_var_names_a_file(tmp_path: Path) -> None:
    path = tmp_path / "gpu.json"
    write(path, status(55.0))
    source = open_source({FAKE_ENV: str(path)})
    assert isinstance(source, FakeSource)
    assert source.read().gpus[0].utilization == 55.0


def test_open_source_without_the_env_var_uses_nvml() -> None:
    source = open_source({})
    try:
        assert isinstance(source, NvmlSource)
    finally:
        source.close()


# ---- NVML source ------------------------------------------------------------------------------


def _real_nvml_works() -> bool:
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return False
    pynvml.nvmlShutdown()
    return True


@pytest.mark.skipif(_real_nvml_works(), reason="this machine has an NVIDIA driver")
def test_nvml_source_without_a_driver_reports_no_gpu_cleanly() -> None:
    source = NvmlSource()
    got = source.read()
    assert not got.available
    assert got.message.startswith("No NVIDIA GPU: ")
    assert got.gpus == []
    source.close()
    source.close()


class FakeNvml:
    """Stand-in for the `pynvml` module: same function names, same error types."""

    NVML_TEMPERATURE_GPU = pynvml.NVML_TEMPERATURE_GPU

    def __init__(self, init_error: int | None = None, lost: set[int] | None = None) -> None:
        self.init_error = init_error
        self.lost = lost or set()
        self.calls: dict[str, int] = {}
        self.compute: list[Any] = []
        self.graphics: list[Any] = []
        self.power_supported = True

    def _count(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1

    def nvmlInit(self) -> None:
        self._count("init")
        if self.init_error is not None:
            raise pynvml.NVMLError(self.init_error)

    def nvmlShutdown(self) -> None:
        self._count("shutdown")

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlSystemGetDriverVersion(self) -> str:
        return "550.54"

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index in self.lost:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_GPU_IS_LOST)
        return index

    def nvmlDeviceGetName(self, handle: int) -> bytes:
        return f"NVIDIA H100 #{handle}".encode()  # old bindings return bytes

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        return SimpleNamespace(gpu=30 + handle, memory=5)

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> Any:
        return SimpleNamespace(used=2048 * MIB, total=81559 * MIB, free=0)

    def nvmlDeviceGetTemperature(self, handle: int, sensor: int) -> int:
        assert sensor == pynvml.NVML_TEMPERATURE_GPU
        return 45

    def nvmlDeviceGetPowerUsage(self, handle: int) -> int:
        if not self.power_supported:
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
        return 123_500  # milliwatts

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list[Any]:
        return self.compute if handle == 0 else []

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list[Any]:
        return self.graphics if handle == 0 else []


def test_nvml_init_failure_is_decided_once_and_never_raises() -> None:
    nvml = FakeNvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED)
    source = NvmlSource(nvml)
    first = source.read()
    for _ in range(5):
        assert source.read() is first
    assert first == GpuStatus(available=False, message="No NVIDIA GPU: Driver Not Loaded")
    assert nvml.calls == {"init": 1}
    source.close()
    assert "shutdown" not in nvml.calls


def test_nvml_source_reports_devices_processes_and_degrades_unsupported_fields() -> None:
    nvml = FakeNvml()
    me = os.getpid()
    nvml.compute = [SimpleNamespace(pid=me, usedGpuMemory=512 * MIB)]
    # Same process in the graphics list ("C+G") and one whose memory the driver cannot tell.
    nvml.graphics = [
        SimpleNamespace(pid=me, usedGpuMemory=512 * MIB),
        SimpleNamespace(pid=2**22 + 7, usedGpuMemory=None),
    ]
    nvml.power_supported = False
    source = NvmlSource(nvml)
    got = source.read()
    assert got.available
    assert got.message == "2 NVIDIA GPUs, driver 550.54"
    gpu0, gpu1 = got.gpus
    assert (gpu0.name, gpu0.utilization, gpu0.temperature_c) == ("NVIDIA H100 #0", 30.0, 45.0)
    assert (gpu0.memory_used_mib, gpu0.memory_total_mib) == (2048.0, 81559.0)
    assert gpu0.power_w is None
    assert gpu0.processes == [
        GpuProcess(me, 512.0, psutil.Process(me).name()),
        GpuProcess(2**22 + 7, 0.0, ""),
    ]
    assert gpu1.processes == []
    nvml.power_supported = True
    assert source.read().gpus[1].power_w == 123.5
    source.close()
    assert nvml.calls["shutdown"] == 1


def test_nvml_source_lost_device_degrades_only_that_device() -> None:
    source = NvmlSource(FakeNvml(lost={1}))
    got = source.read()
    assert got.available
    assert got.gpus[0].name == "NVIDIA H100 #0"
    assert got.gpus[1].name == "GPU 1 (GPU is lost)"
    assert got.gpus[1].memory_total_mib == 0.0


# ---- monitor ----------------------------------------------------------------------------------


class CountingSource(FakeSource):
    """The real fake source, telling the test how many reads happened."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.reads = 0
        self.read_done = threading.Condition()

    def read(self) -> GpuStatus:
        got = super().read()
        with self.read_done:
            self.reads += 1
            self.read_done.notify_all()
        return got

    def wait_reads(self, n: int) -> None:
        with self.read_done:
            target = self.reads + n
            assert self.read_done.wait_for(lambda: self.reads >= target, timeout=5)


def test_monitor_calls_on_change_once_per_change(tmp_path: Path) -> None:
    path = tmp_path / "gpu.json"
    write(path, status(10.0))
    source = CountingSource(path)
    changes: queue.Queue[GpuStatus] = queue.Queue()
    monitor = GpuMonitor(source, changes.put, interval=0.005).start()
    try:
        assert changes.get(timeout=5) == status(10.0)
        source.wait_reads(10)
        assert changes.empty()

        write(path, status(70.0))
        assert changes.get(timeout=5).gpus[0].utilization == 70.0
        assert monitor.latest().gpus[0].utilization == 70.0

        # Touched but identical content: re-read, not reported.
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
        source.wait_reads(10)
        assert changes.empty()

        path.unlink()
        assert not changes.get(timeout=5).available
    finally:
        monitor.stop()


def test_monitor_latest_is_real_as_soon_as_it_starts(tmp_path: Path) -> None:
    path = tmp_path / "gpu.json"
    write(path, status(33.0))
    monitor = GpuMonitor(FakeSource(path), interval=60).start()
    try:
        assert monitor.latest() == status(33.0)
    finally:
        monitor.stop()


def test_monitor_keeps_polling_after_a_listener_fails(tmp_path: Path) -> None:
    path = tmp_path / "gpu.json"
    write(path, status(1.0))
    seen: queue.Queue[float] = queue.Queue()

    def listener(s: GpuStatus) -> None:
        seen.put(s.gpus[0].utilization)
        raise RuntimeError("listener bug")

    monitor = GpuMonitor(FakeSource(path), listener, interval=0.005).start()
    try:
        assert seen.get(timeout=5) == 1.0
        write(path, status(2.0))
        assert seen.get(timeout=5) == 2.0
    finally:
        monitor.stop()


def test_monitor_stop_is_prompt_even_with_a_long_interval(tmp_path: Path) -> None:
    path = tmp_path / "gpu.json"
    write(path, status())
    monitor = GpuMonitor(FakeSource(path), interval=60).start()
    time.sleep(0.05)  # let the thread reach its wait
    began = time.monotonic()
    monitor.stop()
    assert time.monotonic() - began < 1.0
    assert not any(t.name == "gpu-monitor" and t.is_alive() for t in threading.enumerate())


# ---- per-process memory -----------------------------------------------------------------------


def two_gpus() -> GpuStatus:
    a = GpuInfo(0, "A", 0, 0, 0, processes=[GpuProcess(10, 100.0), GpuProcess(11, 50.0)])
    b = GpuInfo(1, "B", 0, 0, 0, processes=[GpuProcess(10, 300.0), GpuProcess(99, 7.0)])
    return GpuStatus(available=True, message="", gpus=[a, b])


def test_gpu_memory_of_sums_only_the_given_pids_across_gpus() -> None:
    assert gpu_memory_of({10, 11}, two_gpus()) == 450.0
    assert gpu_memory_of({99}, two_gpus()) == 7.0
    assert gpu_memory_of({12345}, two_gpus()) == 0.0
    assert gpu_memory_of({10}, GpuStatus(available=False, message="No NVIDIA GPU: x")) == 0.0
