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
        self._submitted = threading.Event()
        self._description = ""
        self.waiting = threading.Event()
        # Called once Run Experiment is accepted: the loop announces the wait only then.
        self.on_waiting: Callable[[], None] = lambda: None

    def submit(self, description: str = "") -> bool:
        """Run Experiment: the edit is done. False when the loop is not waiting for one."""
        if not self.waiting.is_set():
            return False
        self._description = description
        self._submitted.set()
        return True

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        started = time.monotonic()
        self.waiting.set()
        try:
            self.on_waiting()
            while not self._submitted.wait(0.2):
                if cancel.is_set():
                    return EditOutcome(error="stopped while waiting for an edit")
        finally:
            self.waiting.clear()
        self._submitted.clear()
        return EditOutcome(
            description=self._description.strip() or None, agent_s=time.monotonic() - started
        )

    def observe(self, experiment: Experiment) -> None:
        pass
