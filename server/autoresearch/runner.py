"""Run one experiment command: a contained process tree, a timeout, `run.log`, peak memory.

`Runner` is the interface (later: a Ray-backed one); `LocalRunner` runs a local subprocess under
procs' shepherd, which kills every process of the run when it ends (a child subreaper on Linux).
Every process also carries a marker in its environment, so a restarted daemon finds what a
killed one left running.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import msgspec
import psutil

from . import procs
from .procs import MARKER, kill_marked, marked_processes, processes_with_env, signal_all

__all__ = [
    "MARKER",
    "GpuSampler",
    "LocalRunner",
    "RunResult",
    "RunSpec",
    "Runner",
    "kill_marked",
    "marked_processes",
    "processes_with_env",
    "signal_all",
]

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
            tree = procs.spawn(
                [_shell(), "-c", spec.command],
                cwd=spec.cwd,
                env=env,
                stdout=log.fileno(),
                grace=spec.grace,
                marker=(MARKER, marker),
            )
            peak_rss = peak_gpu = 0.0
            timed_out = cancelled = log_limit = False
            while not tree.wait(self.poll):
                elapsed = time.monotonic() - started
                rss, gpu = self._sample(tree)
                peak_rss, peak_gpu = max(peak_rss, rss), max(peak_gpu, gpu)
                if elapsed > spec.timeout:
                    timed_out = True
                elif cancel.is_set():
                    cancelled = True
                elif os.fstat(log.fileno()).st_size > spec.max_log_bytes:
                    log_limit = True
                if timed_out or cancelled or log_limit:
                    tree.stop()
                    break
                if on_tick:
                    on_tick(elapsed)
            # Every process of the run is gone once this returns: the shepherd killed what
            # outlived the command (background jobs, setsid'd or env-cleared daemons).
            outcome = tree.finish()
            if log_limit:  # output written between two polls is cut: the bound is exact
                os.ftruncate(log.fileno(), spec.max_log_bytes)
                os.lseek(log.fileno(), spec.max_log_bytes, os.SEEK_SET)
                os.write(log.fileno(), b"\n[autoresearch: run.log cut at its size limit]\n")
            if outcome.left:  # stuck in uninterruptible I/O: say so where the user looks
                note = f"\n[autoresearch: {outcome.left} process(es) of the run would not die]\n"
                os.write(log.fileno(), note.encode())
        return RunResult(
            exit_code=outcome.exit_code,
            runtime_s=time.monotonic() - started,
            timed_out=timed_out,
            cancelled=cancelled,
            log_limit=log_limit,
            # The reaped processes' rusage is a floor that holds even for commands too short
            # to sample.
            peak_rss_gb=max(peak_rss, outcome.maxrss_kb * 1024 / GB),
            peak_gpu_gb=peak_gpu / 1024,
        )

    def _sample(self, tree: procs.Tree) -> tuple[float, float]:
        """Summed RSS (GB) and GPU memory (MiB) of the process tree right now."""
        found = tree.processes()
        rss = 0
        for p in found:
            try:
                rss += p.memory_info().rss
            except psutil.Error:
                pass
        gpu = self.gpu_sampler({p.pid for p in found}) if self.gpu_sampler else 0.0
        return rss / GB, gpu


def _shell() -> str:
    return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"
