"""One factory wires a loop session for every face: the CLI's foreground `run`, the detached
loop, and the daemon's in-process loop (a start without detach).

It loads or validates the config and prepares the proposer, then takes the repository's loop
lock, saves a given config, and builds the runner and the loop. A refused start writes
nothing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from . import config as cfg
from .agents import prepare_proposer
from .agents.base import Proposer
from .agents.editor import EditorAsk
from .gpu import gpu_memory_of
from .lock import LockError, RepoLock
from .loop import Event, Loop
from .parallel import ParallelLoop, check_git, resumes_in_flight
from .protocol import GpuStatus
from .runner import LocalRunner, Runner
from .slots import CUDA_ENV, plan, plan_cluster

if TYPE_CHECKING:
    from .ray_runner import RayRunner

log = logging.getLogger(__name__)


class Session(msgspec.Struct):
    """A wired loop that holds the repository's lock until `release`."""

    loop: Loop
    proposer: Proposer
    lock: RepoLock

    def release(self) -> None:
        self.lock.release()


def open_session(
    root: Path,
    config: cfg.Config | None,
    limit: int | None,
    tag: str | None,
    *,
    owner: str,
    emit: Callable[[Event], None],
    gpu: Callable[[], GpuStatus],
    editor: EditorAsk | None = None,
) -> Session:
    """`config` None: the saved autoresearch.toml; given: validated, saved once all checks
    passed. `editor`: how the daemon asks VS Code's chat model (agent.kind "editor").
    Raises LockError, ConfigError, RepoError, ValueError or RuntimeError, all
    explaining themselves."""
    # The checks come first, so a refused start writes nothing (not even the lock file); a
    # loop already running, first of all (its edit step may be rewriting the files checked).
    RepoLock(root).refuse_if_held()
    loaded = cfg.load(root) if config is None else config
    cfg.validate(loaded)
    cluster = ray_runner(loaded, root)  # checked before anything is written
    if cluster is None:
        slots = plan(loaded.parallel, gpu(), os.environ.get(CUDA_ENV))
    else:
        gpus = cluster.check_resources().total
        slots = plan_cluster(loaded.parallel, gpus, loaded.ray.gpus_per_experiment)
    parallel = len(slots) > 1 or resumes_in_flight(root, tag)
    if len(slots) > 1:
        check_git(root)
    proposer = prepare_proposer(loaded, root, editor)
    lock = acquire(RepoLock(root), owner)
    try:
        if config is not None:  # saved only once every check passed, under the lock
            cfg.save(root, config)
        if cluster is not None and (left := cluster.stop_left()):  # a killed loop's jobs
            log.warning("stopped Ray jobs a killed loop left running: %s", ", ".join(left))
    except BaseException:
        lock.release()
        raise
    runner: Runner = cluster or LocalRunner(gpu_sampler=lambda pids: gpu_memory_of(pids, gpu()))
    if parallel:
        loop: Loop = ParallelLoop(
            root, loaded, proposer, slots=slots, runner=runner, emit=emit, tag=tag, limit=limit
        )
    else:
        loop = Loop(root, loaded, proposer, runner=runner, emit=emit, tag=tag, limit=limit)
    return Session(loop=loop, proposer=proposer, lock=lock)


def ray_runner(config: cfg.Config, root: Path) -> RayRunner | None:
    """With run.executor "ray": the runner, once the cluster answered (address and token)."""
    if config.run.executor != "ray":
        return None
    from .ray_runner import RayRunner

    return RayRunner(config, root)


def acquire(lock: RepoLock, owner: str) -> RepoLock:
    """Take the repository's loop lock. A status probe (`held_elsewhere`, by an observer or
    `autoresearch status`) holds a shared lock for microseconds: retry briefly before
    believing that another loop runs."""
    for _ in range(3):
        try:
            lock.acquire(owner)
            return lock
        except LockError:
            time.sleep(0.05)
    lock.acquire(owner)
    return lock


def log_end(log: logging.Logger, root: Path, exc: BaseException) -> None:
    """Every stop of a loop by an error goes into the log with its traceback."""
    log.error("loop in %s stopped: %s", root, exc, exc_info=exc)
