"""Parallel experiments: experiments per minute with 1, 2 and 4 workers, and the coordinator's
own time per experiment.

The workers' slots come from a fake 4-GPU source (the JSON file behind AUTORESEARCH_FAKE_GPU,
read through the same GpuSource interface as NVML), one GPU per worker. The command is
sleep-bound (`sleep 1`, then it prints the metric), the edit instant (one file rewritten), the
repository 200 files. Throughput is counted from the baseline's record to the last record, so
the session's setup and baseline are left out; the target is at least 0.9 x N times the
one-worker figure. The coordinator's time is what deciding takes on its thread (applying a win
onto the tip, recording, reverting nothing: workers never touch the branch).
"""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

import msgspec
from common import Table, fmt, make_repo, median_ms

from autoresearch import config as cfg
from autoresearch.agents.base import EditContext, EditOutcome
from autoresearch.experiment import Experiment
from autoresearch.gpu_fake import FakeSource
from autoresearch.parallel import Done, ParallelLoop
from autoresearch.protocol import ExperimentRecorded, GpuInfo, GpuStatus
from autoresearch.slots import plan

RUN_S = 1.0
EXPERIMENTS = 16


class InstantEdit:
    name = "bench"

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        value = 100000 - ctx.number if ctx.number % 2 == 0 else 500000
        (ctx.root / "metric.txt").write_text(f"score: {value}\n")
        return EditOutcome(description=f"experiment {ctx.number}")

    def observe(self, experiment: Experiment) -> None:
        pass


class TimedLoop(ParallelLoop):
    """The loop, with the coordinator's time per decision noted."""

    decide_s: list[float]

    def _decide(self, done: Done) -> bool:
        started = time.perf_counter()
        try:
            return super()._decide(done)
        finally:
            self.decide_s.append(time.perf_counter() - started)


CONFIG = {
    "metric": {"name": "score", "direction": "lower", "pattern": r"^score:\s*(\S+)"},
    "run": {"command": f"sleep {RUN_S} && cat metric.txt", "timeout": 60},
    "scope": {"files": ["metric.txt"]},
    "agent": {"kind": "sweep"},
}


def fake_gpus(path: Path, count: int) -> GpuStatus:
    """A 4-GPU machine as the fake source reads it (the file the e2e suite writes too)."""
    gpus = [GpuInfo(i, "Fake H100", 0.0, 0.0, 81_559.0) for i in range(count)]
    path.write_bytes(msgspec.json.encode(GpuStatus(available=True, message="", gpus=gpus)))
    return FakeSource(path).read()


def one(tmp: Path, workers: int, status: GpuStatus) -> tuple[float, list[float]]:
    root = make_repo(tmp / f"w{workers}", files=200, extra={"metric.txt": "score: 100000\n"})
    config = cfg.from_builtins({**CONFIG, "parallel": {"workers": workers}})
    slots = plan(config.parallel, status, None)
    assert len(slots) == workers and all(len(s.gpus) == 1 for s in slots)
    stamps: list[float] = []

    def emit(event: object) -> None:
        if isinstance(event, ExperimentRecorded):
            stamps.append(time.perf_counter())

    loop = TimedLoop(root, config, InstantEdit(), slots=slots, emit=emit, limit=EXPERIMENTS)
    loop.decide_s = []
    loop.run()
    assert len(stamps) == EXPERIMENTS + 1, len(stamps)
    per_minute = EXPERIMENTS / (stamps[-1] - stamps[0]) * 60
    return per_minute, loop.decide_s


def run(table: Table) -> dict[str, float]:
    print(f"parallel: {EXPERIMENTS} experiments of {RUN_S:g} s with 1, 2, 4 workers", flush=True)
    bench = "parallel workers"
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-parallel-") as tmp:
        status = fake_gpus(Path(tmp) / "gpus.json", 4)
        base = 0.0
        decide: list[float] = []
        for workers in (1, 2, 4):
            rate, spent = one(Path(tmp), workers, status)
            decide += spent
            base = base or rate
            ratio = rate / base
            target = "" if workers == 1 else f"target >= {0.9 * workers:.1f}"
            table.add(
                bench,
                f"{workers} worker{'s' * (workers > 1)}: experiments per minute",
                f"{rate:.1f}",
                f"{ratio:.2f} x one worker; ideal {60 / RUN_S * workers:.0f}; {target}".rstrip(
                    "; "
                ),
            )
            out[f"w{workers}"] = rate
        table.add(
            bench,
            "coordinator time per experiment, median",
            f"{fmt(median_ms(decide), 'ms')}",
            f"n={len(decide)}: apply onto the tip, record, results.tsv; on its own thread",
        )
    return out


if __name__ == "__main__":
    t = Table()
    run(t)
    print(t.markdown())
