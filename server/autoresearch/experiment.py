"""The record of one experiment: a row of results.tsv, and the richer line of experiments.jsonl."""

from __future__ import annotations

from typing import Literal

import msgspec

Status = Literal["keep", "discard", "crash"]
# Why a run crashed, told apart so the loop can react: retry trivial ones, stop on environment.
CrashKind = Literal[
    "timeout", "oom", "missing_metric", "exit", "interrupted", "log_limit", "invalid", "environment"
]
GuardResult = Literal["passed", "failed", "skipped"]


class DiffStats(msgspec.Struct, omit_defaults=True):
    files: int = 0
    additions: int = 0
    deletions: int = 0


class Experiment(msgspec.Struct, omit_defaults=True):
    number: int
    commit: str
    status: Status
    metric: float | None = None
    memory_gb: float = 0.0
    description: str = ""
    tag: str = ""
    parent: str = ""
    reason: str = ""
    crash_kind: CrashKind | None = None
    exit_code: int | None = None
    runtime_s: float = 0.0
    agent_s: float = 0.0
    peak_rss_gb: float = 0.0
    peak_gpu_gb: float = 0.0
    diff: DiffStats = msgspec.field(default_factory=DiffStats)
    confirmation: list[float] = msgspec.field(default_factory=list)
    guard: GuardResult | None = None
    # Scope and repository events (out-of-scope edits undone, agent commits reset, ...).
    events: list[str] = msgspec.field(default_factory=list)
    # Sweep parameters tried, so a resumed sweep can replay its history.
    params: dict[str, float | str] = msgspec.field(default_factory=dict)
    # What the agent's calls for this experiment cost, where its program reports it (the
    # editor's model: its tokens only, prompt and reply together).
    cost_usd: float | None = None
    tokens: int | None = None
    started: str = ""
    finished: str = ""
    # Columns of a results.tsv written by another tool that we keep but do not interpret.
    extra: dict[str, str] = msgspec.field(default_factory=dict)
    # Parallel experiments ([parallel] workers > 1): the worker that ran it (1, 2, ...) and
    # the GPU indices it was given (CUDA_VISIBLE_DEVICES); None and [] in a one-worker loop.
    worker: int | None = None
    gpus: list[int] = msgspec.field(default_factory=list)

    @property
    def short(self) -> str:
        return self.commit[:7]
