"""The workers of a running parallel loop, as `autoresearch status` lists them.

Live state comes from the loop itself: a detached loop (`autoresearch run --detach`, or one VS
Code started) answers `state` on its control socket, workers included. A loop running in the
foreground of another terminal has no socket: then each worker's last recorded experiment is
what is known, and the listing says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from pathlib import Path

import msgspec

from . import control
from .experiment import Experiment
from .protocol import LoopState, WorkerState

# How long status waits for a busy loop to answer (it answers between two steps of its own).
ASK_TIMEOUT_S = 5.0
# How far back the records are read for each worker's last experiment (newest first).
RECENT = 500


def live_state(root: Path) -> LoopState | None:
    """The running detached loop's state, or None when no detached loop answers."""
    try:
        conn = control.Connection(root, timeout=ASK_TIMEOUT_S)
    except (control.ControlError, OSError):
        return None
    try:
        return conn.ask("state").state
    except (control.ControlError, OSError, msgspec.DecodeError):
        return None
    finally:
        conn.close()


def _gpus(gpus: list[int]) -> str:
    if not gpus:
        return "CPU"
    return f"GPU{'s' if len(gpus) > 1 else ''} {','.join(map(str, gpus))}"


def _seconds(s: float) -> str:
    n = int(s)
    if n < 120:
        return f"{n}s"
    if n < 3600:
        return f"{n // 60}m{n % 60:02d}s"
    return f"{n // 3600}h{n % 3600 // 60:02d}m"


def worker_line(w: WorkerState) -> str:
    """`worker 2  GPU 1  #14 running 35s  LR 0.01 -> 0.02` (an idle one: `... idle`)."""
    head = f"worker {w.worker}  {_gpus(w.gpus)}"
    if w.number is None:
        return f"{head}  idle"
    elapsed = f" {_seconds(w.elapsed_s)}" if w.elapsed_s is not None else ""
    what = " ".join(w.description.split())
    return f"{head}  #{w.number} {w.phase}{elapsed}" + (f"  {what}" if what else "")


def live_lines(state: LoopState) -> list[str]:
    """The listing from a live state: a line per worker; [] for the one-at-a-time loop."""
    if not state.workers:
        return []
    busy = sum(1 for w in state.workers if w.number is not None)
    return [
        f"workers: {busy}/{len(state.workers)} busy",
        *(f"  {worker_line(w)}" for w in sorted(state.workers, key=lambda w: w.worker)),
    ]


def recorded_lines(experiments: Iterable[Experiment]) -> list[str]:
    """Without live state: each worker's newest recorded experiment (`experiments` newest first,
    read no further than RECENT); [] when none ran on a worker."""
    last: dict[int, Experiment] = {}
    for e in itertools.islice(experiments, RECENT):
        if e.worker is not None and e.worker not in last:
            last[e.worker] = e
    if not last:
        return []
    lines = [
        "workers: no live state (only a detached loop answers on its socket; a loop in a"
        " terminal shows them there); each worker's last recorded experiment:"
    ]
    for worker, e in sorted(last.items()):
        what = " ".join(e.description.split())
        lines.append(
            f"  worker {worker}  {_gpus(e.gpus)}  last #{e.number} {e.status}"
            + (f"  {what}" if what else "")
        )
    return lines
