"""Fake coding-agent CLIs and a small repository for them to work on (see fake_agent.py)."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from autoresearch.config import Agent, Config, Metric, Run, Scope

FAKE_AGENT = Path(__file__).with_name("fake_agent.py")

TRAIN_PY = """\
LEARNING_RATE = 0.01  # step size
BATCH_SIZE = 32

print(f"val_loss: {LEARNING_RATE * 10:.4f}")
"""
PREPARE_PY = """\
def evaluate(loss):
    return loss
"""


def make_repo(path: Path) -> Path:
    """A committed git repository: train.py (in scope), prepare.py (off-limits), README.md."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.py").write_text(TRAIN_PY)
    (path / "prepare.py").write_text(PREPARE_PY)
    (path / "README.md").write_text("# demo\n")
    (path / ".gitignore").write_text(".autoresearch/\nresults.tsv\nrun.log\n")
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test")
    git(path, "config", "user.email", "test@example.com")
    git(path, "config", "commit.gpgsign", "false")
    git(path, "add", "-A")
    git(path, "commit", "-qm", "initial")
    (path / "results.tsv").write_text("commit\tmetric\tmemory_gb\tstatus\tdescription\n")
    return path


def agent_command(mode: str, *extra: str) -> str:
    """A custom agent command template running the fake agent in `mode`."""
    words = " ".join(shlex.quote(w) for w in extra)
    return f"{shlex.quote(str(FAKE_AGENT))} -p {{prompt_file}} --mode {mode} {words}".strip()


def make_config(
    command: str | None = None, preset: str | None = None, timeout: float = 30.0
) -> Config:
    return Config(
        metric=Metric(name="val_loss", direction="lower", pattern=r"^val_loss:\s*([0-9.]+)"),
        run=Run(command="python3 train.py"),
        scope=Scope(files=["train.py"], off_limits=["prepare.py"]),
        agent=Agent(kind="command", preset=preset, command=command, timeout=timeout),
    )


def git(root: Path, *argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=root, capture_output=True, text=True, check=True)
    return done.stdout
