"""Shared fixtures: real git repositories in temporary folders, and a scripted edit step."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from autoresearch import config as cfg
from autoresearch.agents.base import EditContext, EditOutcome
from autoresearch.experiment import Experiment

TRAIN = """\
LR = 0.5
DEPTH = 4

# The score is best (lowest) at LR = 0.3; a negative LR crashes the run.
if LR < 0:
    raise ValueError("negative learning rate")
print("training...")
print(f"score: {abs(LR - 0.3) + DEPTH * 0.01:.6f}")
print("peak_mem_mb: 512.0")
"""

EVAL = "# the evaluation harness: off limits\nTHRESHOLD = 1\n"

# The Ctrl-C tests send SIGINT as a terminal does. A test run started in the background (`make
# test &`, a CI step run by a non-interactive shell) inherits SIGINT ignored, and every process it
# starts would keep ignoring it (the loop, rightly, leaves an inherited SIG_IGN alone): give the
# test processes the terminal's disposition (a caught signal is reset to the default at exec).
signal.signal(signal.SIGINT, signal.default_int_handler)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_repo(root: Path, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.name", "Test")
    git(root, "config", "user.email", "test@localhost")
    for rel, text in (files or {"train.py": TRAIN, "evaluate.py": EVAL}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial")
    return root


def make_config(**overrides: object) -> cfg.Config:
    raw: dict[str, object] = {
        "metric": {"name": "score", "direction": "lower", "pattern": r"^score:\s*(\S+)"},
        "run": {"command": f"{sys.executable} train.py", "timeout": 30},
        "scope": {"files": ["train.py"], "off_limits": ["evaluate.py"]},
        "agent": {"kind": "sweep", "seed": 1},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            raw.setdefault(section, {})[field] = value  # type: ignore[index]
        else:
            raw[section] = value
    return cfg.from_builtins(raw)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


Edit = Callable[[Path], str | None]


class ScriptedProposer:
    """Stands in for a coding agent behind the Proposer interface: applies edits in order."""

    name = "scripted"

    def __init__(self, edits: list[Edit]) -> None:
        self.edits = list(edits)
        self.contexts: list[EditContext] = []
        self.observed: list[Experiment] = []

    def propose(self, ctx: EditContext, cancel: threading.Event) -> EditOutcome:
        self.contexts.append(ctx)
        edit = self.edits.pop(0) if self.edits else (lambda root: None)
        return EditOutcome(description=edit(ctx.root))

    def observe(self, experiment: Experiment) -> None:
        self.observed.append(experiment)


def set_lr(value: str) -> Edit:
    def edit(root: Path) -> str:
        path = root / "train.py"
        path.write_text(path.read_text().replace(_current_lr(path), f"LR = {value}"))
        return f"LR -> {value}"

    return edit


def _current_lr(path: Path) -> str:
    return next(line for line in path.read_text().splitlines() if line.startswith("LR = "))


def alive_with_env(name: str, value: str) -> list[psutil.Process]:
    """Live (non-zombie) processes whose environment has name=value: what a kill left."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(name) == value and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except psutil.Error:
            continue
    return found
