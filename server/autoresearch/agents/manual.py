"""The `manual` proposer: a person edits (in VS Code), then asks for the experiment to run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from ..experiment import Experiment
from .base import EditContext, EditOutcome


class ManualProposer:
    name = "manual"

    def __init__(self) -> None:
        self._lock = threading.Lock()  # Run Experiment against a pause: one of them wins
        self._submitted = threading.Event()
        self._description = ""
        self.waiting = threading.Event()
        # Called once Run Experiment is accepted: the loop announces the wait only then.
        self.on_waiting: Callable[[], None] = lambda: None
        # Set by the loop. While no experiment runs, a pause or a stop takes effect at once:
        # `interrupted` says one came, `hold` is where the loop is paused until it resumes.
        self.interrupted: Callable[[], bool] = lambda: False
        self.hold: Callable[[], None] = lambda: None

    def submit(self, description: str = "") -> bool:
        """Run Experiment: the edit is done. False when the loop is not waiting for one."""
        with self._lock:
            if not self.waiting.is_set():
                return False
            self._description = description
            self._submitted.set()
            return True

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        started = time.monotonic()
        while not self._wait(cancel):
            if cancel.is_set():
                return EditOutcome(error="stopped while waiting for an edit")
            self.hold()  # paused: Run Experiment is refused until Resume (the edit stays)
        self._submitted.clear()
        return EditOutcome(
            description=self._description.strip() or None, agent_s=time.monotonic() - started
        )

    def _wait(self, cancel: threading.Event) -> bool:
        """True once Run Experiment came; False when a stop or a pause came first."""
        if cancel.is_set() or self.interrupted():
            return False
        self.waiting.set()
        try:
            self.on_waiting()
            while not self._submitted.wait(0.2):
                if cancel.is_set() or self.interrupted():
                    with self._lock:
                        if self._submitted.is_set():
                            return True  # pressed just before: the person asked for it, it runs
                        self.waiting.clear()
                    return False
            return True
        finally:
            self.waiting.clear()

    def observe(self, experiment: Experiment) -> None:
        pass


def run_experiment(proposer: object, kind: str, phase: str, description: str) -> tuple[bool, str]:
    """Run Experiment sent to a loop (its proposer, agent kind and phase): whether it was
    taken, and what to tell the person."""
    if not isinstance(proposer, ManualProposer):
        return False, (
            f"The loop's agent is {kind}: it edits by itself. Run Experiment is for the manual"
            " agent."
        )
    if proposer.submit(description):
        return True, "running the experiment"
    return False, not_waiting(phase)


def not_waiting(phase: str) -> str:
    """Why Run Experiment is refused in this phase, and what to do."""
    if phase == "paused":
        return "The loop is paused: Resume it, then Run Experiment (your edit stays as it is)."
    return (
        f"The loop is not waiting for an edit (phase {phase}). Run Experiment when it asks for one."
    )
