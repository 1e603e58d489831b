"""The edit step's interface: a proposer edits the working tree once per iteration.

The loop owns everything around it (scope check, commit, run, decide); a proposer only edits
and says what it tried. It may block (a human in manual mode, an agent CLI, later a remote
language model asked through the client) and must return promptly once `cancel` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, Protocol

import msgspec

from ..config import Config
from ..experiment import Experiment

FailureKind = Literal["guard", "crash", "scope", "no_change"]


class AgentUnavailable(RuntimeError):
    """The edit step cannot run here (binary missing or not executable): the loop stops with
    this message instead of burning iterations."""


class EditContext(msgspec.Struct):
    root: Path
    # The number the experiment will get.
    number: int
    config: Config
    # This session's experiments so far, oldest first (the baseline is number 0); a resumed
    # session's is a History (session_history), decoded on first whole use.
    history: Sequence[Experiment]
    best: Experiment | None
    # Set when this call must fix something: guard output, a crash's log tail, ...
    failure: str | None = None
    failure_kind: FailureKind | None = None
    # Discards and crashes since the last keep; at 3 the prompt says "change approach".
    reverts_in_a_row: int = 0
    # The user's steering text (.autoresearch/guidance.md), read at every iteration.
    guidance: str = ""
    # 0 for the first call of an experiment, then 1, 2, ... for its crash retries and reworks.
    attempt: int = 0
    # Parallel experiments: what the other workers are trying right now, one line each
    # ("#12 (worker 2): LR 0.01 -> 0.02"), so this call tries something else.
    others: list[str] = msgspec.field(default_factory=list)
    # Added to an agent program's environment: a parallel worker's own GPUs
    # (CUDA_VISIBLE_DEVICES) and AUTORESEARCH_WORKER, so an agent that runs the command to try
    # its change uses only its worker's GPUs.
    env: dict[str, str] = msgspec.field(default_factory=dict)


class EditOutcome(msgspec.Struct):
    # One line saying what was tried; None lets the loop describe the diff itself.
    description: str | None = None
    # Seconds the edit step took (the agent's own time, excluded from loop overhead).
    agent_s: float = 0.0
    # The proposer could not produce an edit (agent exited non-zero, timed out, ...): one line.
    error: str | None = None
    # Where the edit step's own output is kept (repo-relative), and its last lines.
    log: str = ""
    output: str = ""
    # What the edit step put right itself (a stale index.lock its killed git left behind),
    # recorded with the experiment like the scope events.
    events: list[str] = msgspec.field(default_factory=list)
    # Sweep parameter values tried, recorded with the experiment.
    params: dict[str, float | str] = msgspec.field(default_factory=dict)
    # Nothing to propose until an experiment in flight is decided (a parallel sweep whose
    # every neighbour of the best is being measured): the worker asks again after the next
    # decision; not a failure of the agent.
    after_decision: bool = False
    # What the call cost, where the program says (agents/usage.py); None when unknown.
    cost_usd: float | None = None
    tokens: int | None = None


class Proposer(Protocol):
    name: str

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        """Edit files under ctx.root (never commit). Return when done or when cancel is set."""
        ...

    def observe(self, experiment: Experiment) -> None:
        """Told every decided experiment, the baseline included."""
        ...
