"""Containment: when a run, a guard or an agent ends, every process it started ends with it.

Real processes built to escape (escapees.py): a `setsid env -i` sleeper no environment marker
finds, and a daemon that forks again and again in new sessions. Through the runner, through
the agent step, and through a real `autoresearch run`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import git
from escapees import Escapees
from fake_agents import make_config as agent_config
from fake_agents import make_repo as agent_repo
from test_faults import STARTED, Daemon, assert_consistent, fault_repo, resume

from autoresearch import procs
from autoresearch.agents.base import EditContext
from autoresearch.agents.command import CommandProposer
from autoresearch.bootstrap import RERUN_EVENT
from autoresearch.experiment import Experiment
from autoresearch.runner import LocalRunner, RunSpec


@pytest.fixture
def escapees(tmp_path: Path) -> Iterator[Escapees]:
    found = Escapees(tmp_path)
    yield found
    found.cleanup()
    while STARTED:  # `autoresearch run` processes of a failed test
        daemon = STARTED.pop()
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()


def run(tmp_path: Path, command: str, timeout: float) -> object:
    spec = RunSpec(
        command=command, cwd=tmp_path, log_path=tmp_path / "run.log", timeout=timeout, grace=0.5
    )
    return LocalRunner(poll=0.05).run(spec, threading.Event())


# ---- the runner (runs and guards) -----------------------------------------------------------


def test_a_timeout_kills_escapees_that_left_the_group_and_the_environment(
    tmp_path: Path, escapees: Escapees
) -> None:
    result = run(tmp_path, escapees.shell() + "sleep 300", timeout=2)
    assert result.timed_out and escapees.started.exists()
    assert escapees.survivors() == []


def test_a_finished_run_leaves_no_escapee_behind(tmp_path: Path, escapees: Escapees) -> None:
    result = run(tmp_path, escapees.shell() + "echo done", timeout=60)
    assert result.exit_code == 0 and not result.timed_out
    assert (tmp_path / "run.log").read_text() == "done\n"
    assert escapees.survivors() == []


def test_exit_codes_and_signals_come_through_the_shepherd(tmp_path: Path) -> None:
    assert run(tmp_path, "exit 7", timeout=10).exit_code == 7
    assert run(tmp_path, "kill -SEGV $$", timeout=10).exit_code == -11


def test_a_program_that_does_not_exist_is_an_error_at_spawn(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        procs.spawn(
            ["no-such-program-here"],
            cwd=tmp_path,
            env={"PATH": "/usr/bin:/bin"},
            stdout=None,
            grace=1,
        )


# ---- the agent step -------------------------------------------------------------------------


def propose(root: Path, command: str, timeout: float) -> object:
    config = agent_config(command, timeout=timeout)
    baseline = Experiment(number=0, commit="0" * 40, status="keep", metric=0.1)
    ctx = EditContext(root=root, number=1, config=config, history=[baseline], best=baseline)
    return CommandProposer(config, root, kill_grace_s=0.5).propose(ctx, threading.Event())


@pytest.mark.parametrize("ending", ["exits", "times out"])
def test_an_agent_leaves_no_escapee_behind(tmp_path: Path, escapees: Escapees, ending: str) -> None:
    root = agent_repo(tmp_path / "repo")
    tail = "echo edited" if ending == "exits" else "sleep 300"
    outcome = propose(root, escapees.shell() + tail, timeout=3)
    assert escapees.started.exists()
    if ending == "exits":
        assert outcome.error is None, outcome.output
    else:
        assert outcome.error and "timed out" in outcome.error
    assert escapees.survivors() == []


# ---- a real `autoresearch run` --------------------------------------------------------------

TRAIN = """\
import os, subprocess, sys, time
LR = 0.5
MODE = "normal"

print("training...", flush=True)
if MODE == "escape":
    subprocess.run(["bash", "-c", os.environ["ESCAPE"]])
    time.sleep(300)
print(f"score: {abs(LR - 0.3):.6f}", flush=True)
"""


def test_autoresearch_run_kills_escapees_at_the_timeout(tmp_path: Path, escapees: Escapees) -> None:
    root = fault_repo(tmp_path, timeout=3)
    (root / "train.py").write_text(TRAIN)
    git(root, "commit", "-qam", "escaping runs")
    daemon = Daemon(
        root, "--loop", "1", plan={"1": {"mode": "escape"}}, env={"ESCAPE": escapees.shell()}
    )
    assert daemon.wait(120) == 0, daemon.text()
    recs = assert_consistent(root)
    assert [(r.status, r.crash_kind) for r in recs] == [("keep", None), ("crash", "timeout")]
    assert escapees.started.exists()
    assert escapees.survivors() == []
    assert daemon.leftovers() == []


def test_a_resume_after_kill_9_kills_the_escapees_of_the_killed_run(
    tmp_path: Path, escapees: Escapees
) -> None:
    root = fault_repo(tmp_path, timeout=600)
    (root / "train.py").write_text(TRAIN)
    git(root, "commit", "-qam", "escaping runs")
    daemon = Daemon(root, plan={"1": {"mode": "escape"}}, env={"ESCAPE": escapees.shell()})
    daemon.until(escapees.started.exists)
    daemon.kill9()
    assert escapees.alive(), "the run outlives the daemon, as it would"
    again, recs = resume(root)
    assert "killed the processes left running by experiment #1" in again.text()
    assert escapees.survivors() == []
    # The interrupted experiment runs again once (its escape needs ESCAPE, which the resume
    # does not set, so the re-run crashes): the point here is that nothing of the first is left.
    assert RERUN_EVENT in recs[1].events and recs[1].status == "crash"
