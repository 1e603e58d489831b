"""Which workers a parallel loop runs, and which GPUs each is given: pure, from the config, the
GPU monitor's reading and CUDA_VISIBLE_DEVICES.

`workers = "auto"` is one worker per `gpus_per_worker` GPUs the monitor sees (within
CUDA_VISIBLE_DEVICES when it is set), or 1 without a GPU; a number is that many workers, each
with its own GPUs (never shared), or CPU slots (no GPU) when the machine has none.
"""

from __future__ import annotations

import msgspec

from .config import Parallel
from .protocol import GpuStatus

CUDA_ENV = "CUDA_VISIBLE_DEVICES"
WORKER_ENV = "AUTORESEARCH_WORKER"


class SlotError(ValueError):
    """The workers asked for cannot be given their GPUs; the message says what to change."""


class Slot(msgspec.Struct, frozen=True):
    worker: int
    gpus: tuple[int, ...] = ()

    def env(self) -> dict[str, str]:
        """The run's and the agent's environment: its own GPUs (none: an empty list, so a CPU
        slot never grabs a GPU another worker has) and its number."""
        env = {WORKER_ENV: str(self.worker)}
        if self.gpus:
            env[CUDA_ENV] = ",".join(str(g) for g in self.gpus)
        return env

    @property
    def label(self) -> str:
        if not self.gpus:
            return f"worker {self.worker}"
        gpus = ",".join(str(g) for g in self.gpus)
        return f"worker {self.worker} (GPU {gpus})"


def visible_gpus(status: GpuStatus, visible: str | None) -> list[int]:
    """The GPU indices this loop may use: the monitor's, within CUDA_VISIBLE_DEVICES if set."""
    seen = [g.index for g in status.gpus] if status.available else []
    if visible is None:
        return seen
    allowed: list[int] = []
    for item in visible.split(","):
        item = item.strip()
        if not item:
            continue
        if not item.isdigit():
            raise SlotError(
                f"{CUDA_ENV}={visible!r} names GPUs by UUID ({item}); parallel workers need"
                f" indices. Set {CUDA_ENV} to indices such as 0,1,2,3, or unset it."
            )
        allowed.append(int(item))
    return [i for i in allowed if i in seen]


def plan(parallel: Parallel, status: GpuStatus, visible: str | None) -> list[Slot]:
    """The slots, worker 1 first. Raises SlotError when the numbers cannot be met."""
    gpus = visible_gpus(status, visible)
    per = parallel.gpus_per_worker
    wanted = parallel.workers
    if not gpus:
        count = 1 if wanted == "auto" else wanted
        return [Slot(worker=w) for w in range(1, count + 1)]
    fit = len(gpus) // per
    if fit == 0:
        raise SlotError(
            f"parallel.gpus_per_worker is {per}, but {_seen(gpus)}. Lower gpus_per_worker to"
            f" {len(gpus)} or less."
        )
    count = fit if wanted == "auto" else wanted
    if count > fit:
        raise SlotError(
            f"parallel.workers is {count} with {per} GPU{'s' * (per != 1)} each, but"
            f' {_seen(gpus)}: GPUs are never shared. Set workers to {fit} or "auto".'
        )
    return [Slot(worker=w, gpus=tuple(gpus[(w - 1) * per : w * per])) for w in range(1, count + 1)]


def _seen(gpus: list[int]) -> str:
    listed = ", ".join(str(g) for g in gpus)
    return f"the usable GPUs are {listed} ({len(gpus)})"


def plan_cluster(parallel: Parallel, cluster_gpus: float, per: int) -> list[Slot]:
    """The slots of a loop whose runs are Ray jobs: no local GPUs (Ray gives each job its own);
    `workers = "auto"` is as many jobs at once as the cluster's GPUs hold."""
    wanted = parallel.workers
    if wanted != "auto":
        return [Slot(worker=w) for w in range(1, wanted + 1)]
    if per == 0:
        raise SlotError(
            'parallel.workers is "auto" and ray.gpus_per_experiment is 0: there is no GPU count'
            " to follow. Set parallel.workers to a number of jobs at once."
        )
    fit = int(cluster_gpus // per)
    if fit == 0:
        raise SlotError(
            f"ray.gpus_per_experiment is {per}, but the Ray cluster has {cluster_gpus:g} GPU(s)."
            " Lower gpus_per_experiment, or add GPU nodes."
        )
    return [Slot(worker=w) for w in range(1, fit + 1)]
