"""A state announced to the client is already true: "waiting for your edit" means Run Experiment
is accepted at once.

The client here answers inside the notification itself, on the loop's own thread, before the
loop takes another step: the tightest interleaving a busy machine can produce, forced.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import msgspec
from lsp_fixtures import TRAIN, config, make_repo

from autoresearch import config as cfg
from autoresearch.loop_host import LoopHost
from autoresearch.protocol import Ack, GpuStatus, LoopState, Method
from autoresearch.records import Records


class EagerPerson:
    """A client whose person edits and presses Run Experiment the instant the loop says it
    waits for them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.host: LoopHost | None = None
        self.acks: list[Ack] = []
        self.ended = threading.Event()

    def post(self, method: str, payload: msgspec.Struct) -> None:
        if method != Method.STATE_CHANGED or not isinstance(payload, LoopState):
            return
        if payload.phase in ("stopped", "failed"):
            self.ended.set()
        if payload.phase == "editing" and self.host is not None and not self.acks:
            (self.root / "train.py").write_text(TRAIN.replace("X = 1.0", "X = 0.75"))
            self.acks.append(self.host.run_experiment("X to 0.75"))
            if not self.acks[-1].ok:  # refused: stop rather than wait for a second press
                self.host.stop(now=True)

    def say(self, text: str) -> None:
        pass

    def gpu_status(self) -> GpuStatus:
        return GpuStatus(available=False, message="no GPU here")


def test_run_experiment_is_accepted_the_moment_editing_is_announced(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    person = EagerPerson(root)
    host = LoopHost(root, person, Records(root), logging.getLogger("test"), lambda: None)
    person.host = host
    manual = cfg.from_builtins({**config(), "agent": {"kind": "manual"}})
    host.start(manual, limit=1, tag=None)
    assert person.ended.wait(60), "the loop did not finish"
    assert person.acks == [Ack(True, "running the experiment")]
    assert host.loop is not None and host.loop.state.phase == "stopped"
    assert [(e.number, e.description) for e in host.loop.history] == [
        (0, "baseline"),
        (1, "X to 0.75"),
    ]
