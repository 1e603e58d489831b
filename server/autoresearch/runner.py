"""Run one experiment command: its own process group, a timeout, `run.log`, peak memory.

`Runner` is the interface (later: a Ray-backed one); `LocalRunner` runs a local subprocess.
Every process the command starts carries a marker in its environment, so children that leave
the process group (setsid, double fork) are still found and killed when the run ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import msgspec
import psutil

MARKER = "AUTORESEARCH_RUN_ID"
GB = 1024**3


class RunSpec(msgspec.Struct):
    command: str
    cwd: Path
    log_path: Path
    timeout: float
    env: dict[str, str] = msgspec.field(default_factory=dict)
    max_log_bytes: int = 2 * GB
    # Seconds between SIGTERM and SIGKILL when the run must end.
    grace: float = 3.0
    # Put in every process's environment; journaled first, so a restarted daemon can find
    # and kill what a killed one left running.
    marker: str = ""


class RunResult(msgspec.Struct):
    exit_code: int | None
    runtime_s: float
    timed_out: bool = False
    cancelled: bool = False
    log_limit: bool = False
    peak_rss_gb: float = 0.0
    peak_gpu_gb: float = 0.0

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not (self.timed_out or self.cancelled or self.log_limit)


class Runner(Protocol):
    def run(
        self,
        spec: RunSpec,
        cancel: threading.Event,
        on_tick: Callable[[float], None] | None = None,
    ) -> RunResult: ...


# GPU memory (MiB) used by a set of pids, from the GPU monitor's latest reading.
GpuSampler = Callable[[set[int]], float]


class LocalRunner:
    def __init__(self, gpu_sampler: GpuSampler | None = None, poll: float = 0.25) -> None:
        self.gpu_sampler = gpu_sampler
        self.poll = poll

    def run(
        self,
        spec: RunSpec,
        cancel: threading.Event,
        on_tick: Callable[[float], None] | None = None,
    ) -> RunResult:
        marker = spec.marker or uuid.uuid4().hex
        env = {**os.environ, **spec.env, MARKER: marker}
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with open(spec.log_path, "wb") as log:
            proc = _spawn(spec.command, spec.cwd, env, log.fileno())
            pid = proc.pid
            exited = threading.Event()
            status: list[int] = []
            waiter = threading.Thread(target=_wait, args=(pid, status, exited), daemon=True)
            waiter.start()
            peak_rss = peak_gpu = 0.0
            timed_out = cancelled = log_limit = False
            while not exited.wait(self.poll):
                elapsed = time.monotonic() - started
                rss, gpu = self._sample(pid)
                peak_rss, peak_gpu = max(peak_rss, rss), max(peak_gpu, gpu)
                if elapsed > spec.timeout:
                    timed_out = True
                elif cancel.is_set():
                    cancelled = True
                elif os.fstat(log.fileno()).st_size > spec.max_log_bytes:
                    log_limit = True
                if timed_out or cancelled or log_limit:
                    _terminate(pid, marker, spec.grace, exited)
                    break
                if on_tick:
                    on_tick(elapsed)
            waiter.join()
            if log_limit:  # output written between two polls is cut: the bound is exact
                os.ftruncate(log.fileno(), spec.max_log_bytes)
                os.lseek(log.fileno(), spec.max_log_bytes, os.SEEK_SET)
                os.write(log.fileno(), b"\n[autoresearch: run.log cut at its size limit]\n")
            proc.returncode = status[0] if status else -1  # reaped by wait4, not by Popen
        runtime = time.monotonic() - started
        # Whatever outlived the command goes too: background jobs still in its process group
        # by the group (no /proc read can miss one mid-exec), setsid'd ones by their marker.
        _signal_group(pid, signal.SIGKILL)
        _kill_marked(marker, signal.SIGKILL)
        code, maxrss_kb = status if status else (None, 0)
        return RunResult(
            exit_code=code,
            runtime_s=runtime,
            timed_out=timed_out,
            cancelled=cancelled,
            log_limit=log_limit,
            peak_rss_gb=max(peak_rss, maxrss_kb * 1024 / GB),
            peak_gpu_gb=peak_gpu / 1024,
        )

    def _sample(self, pid: int) -> tuple[float, float]:
        """Summed RSS (GB) and GPU memory (MiB) of the process tree right now."""
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0, 0.0
        rss = 0
        for p in procs:
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                pass
        gpu = self.gpu_sampler({p.pid for p in procs}) if self.gpu_sampler else 0.0
        return rss / GB, gpu


def _spawn(command: str, cwd: Path, env: dict[str, str], log_fd: int) -> subprocess.Popen[bytes]:
    shell = "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
    return subprocess.Popen(
        [shell, "-c", command],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_fd,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a timeout can kill the whole tree
    )


def _wait(pid: int, status: list[int], exited: threading.Event) -> None:
    # wait4's rusage covers the child and the descendants it reaped: a floor for peak RSS
    # that holds even for commands too short to sample.
    _, raw, usage = os.wait4(pid, 0)
    status += [os.waitstatus_to_exitcode(raw), usage.ru_maxrss]
    exited.set()


def _terminate(pid: int, marker: str, grace: float, exited: threading.Event) -> None:
    """SIGTERM the group and every marked process, then SIGKILL what is left after `grace`."""
    _signal_group(pid, signal.SIGTERM)
    _kill_marked(marker, signal.SIGTERM)
    exited.wait(grace)
    _signal_group(pid, signal.SIGKILL)
    _kill_marked(marker, signal.SIGKILL)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)  # setsid made the shell its group's leader: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def marked_processes(marker: str) -> list[psutil.Process]:
    """Every process (but this one) whose environment carries `marker`."""
    return processes_with_env(MARKER, marker)


def processes_with_env(name: str, value: str) -> list[psutil.Process]:
    """Every process (but this one) whose environment has name=value. Scanned after every run,
    so on Linux the environments are read raw from /proc: a third of psutil's cost."""
    found = []
    if os.path.isdir("/proc/self"):
        for pid in _proc_pids_with(f"{name}={value}\0".encode()):
            try:
                found.append(psutil.Process(pid))
            except psutil.Error:  # ended meanwhile
                pass
        return found
    me = os.getpid()
    for proc in psutil.process_iter():
        if proc.pid == me:
            continue
        try:
            if proc.environ().get(name) == value:
                found.append(proc)
        except (psutil.Error, OSError):
            continue
    return found


def _proc_pids_with(entry: bytes) -> list[int]:
    me = os.getpid()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == me:
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                data = f.read()
        except OSError:  # gone, or not ours to read
            continue
        if data.startswith(entry) or b"\0" + entry in data:
            found.append(int(name))
    return found


def signal_all(procs: list[psutil.Process], sig: signal.Signals = signal.SIGKILL) -> int:
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.Error:
            pass
    return len(procs)


def kill_marked(marker: str, sig: signal.Signals = signal.SIGKILL) -> int:
    """Signal every process carrying `marker`; how many there were."""
    return signal_all(marked_processes(marker), sig)


def _kill_marked(marker: str, sig: signal.Signals) -> None:
    kill_marked(marker, sig)
