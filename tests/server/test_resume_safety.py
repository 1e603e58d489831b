"""Nothing of the user's is ever lost: resume, decisions and setup never destroy a person's work.

Real `autoresearch run` processes on real repositories, killed with SIGKILL at chosen moments
(a gate file holds a run until the test has done its edits; journal.PAUSE_ENV parks the daemon
at a named point). After each, a person's edits are in the tree or in a named stash, their
commits on the branch, every attempt ref where it was, and no experiment number used twice.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from branch_head import head_past_notes
from conftest import TRAIN as CONF_TRAIN
from conftest import alive_with_env, git, make_repo
from test_faults import (  # noqa: F401 (the autouse fixture applies here too)
    Daemon,
    _no_stray_processes,
    assert_consistent,
    at_step,
    fault_repo,
    journal,
    records,
    resume,
    settle,
)

from autoresearch.agents.sweep import CONSTANT
from autoresearch.bootstrap import RERUN_EVENT
from autoresearch.repo import Repo, RepoError

# The experiment script: MODE (written by the fault agent per experiment) picks how it runs.
# "gate": waits until the file named by SAFETY_GATE exists (the test edits meanwhile);
# "slow": sleeps, so the test can kill the run, unless FAULT_FAST_RUNS is set.
TRAIN = """\
import os, pathlib, time
LR = 0.5
MODE = "normal"

print("training...", flush=True)
gate = os.environ.get("SAFETY_GATE", "")
if MODE == "gate" and gate:
    pathlib.Path(gate + ".waiting").write_text("")
    while not os.path.exists(gate):
        time.sleep(0.05)
elif MODE == "slow" and not os.environ.get("FAULT_FAST_RUNS"):
    time.sleep(120)
print(f"score: {abs(LR - 0.3):.6f}", flush=True)
"""

NOTES = "# my notes\n"


def safety_repo(tmp: Path) -> Path:
    """fault_repo's session (the fault agent as the edit step), with the script above and a
    tracked file of the person's outside the scope (NOTES.md)."""
    root = fault_repo(tmp)
    (root / "train.py").write_text(TRAIN)
    (root / "NOTES.md").write_text(NOTES)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "notes and a gated script")
    return root


def run_log_says(root: Path, n: int, text: str) -> Callable[[], bool]:
    runs = root / ".autoresearch" / "runs"
    return lambda: any(text in p.read_text() for p in runs.glob(f"*-{n}.log"))


def kill_run(root: Path) -> None:
    """kill -9 the run's process group too, as a terminal's kill of everything would."""
    marker = journal(root).get("marker", "")
    for proc in alive_with_env("AUTORESEARCH_RUN_ID", marker) if marker else []:
        with contextlib.suppress(psutil.Error):
            proc.kill()


def stashes(root: Path) -> list[str]:
    return git(root, "stash", "list", "--format=%gs").splitlines()


def ref(root: Path, tag: str, n: int) -> str:
    return git(root, "rev-parse", f"refs/autoresearch/{tag}/{n}")


FAST = {"FAULT_FAST_RUNS": "1"}


# ---- 1. resume keeps what a person changed after the kill ------------------------------------


def test_resume_stashes_edits_made_after_a_kill(tmp_path: Path) -> None:
    root = safety_repo(tmp_path)
    daemon = Daemon(root, plan={"1": {"mode": "slow"}})
    daemon.until(run_log_says(root, 1, "training"))
    daemon.kill9()
    kill_run(root)
    (root / "NOTES.md").write_text(NOTES + "an idea for later\n")
    with open(root / "train.py", "a") as f:
        f.write("# tried by hand\n")
    again, recs = resume(root, env=FAST)
    # Both edits are in one named stash, the message naming the files; the tree is the loop's.
    [entry] = stashes(root)
    assert "NOTES.md" in entry and "train.py" in entry and entry.startswith("On autoresearch/")
    patch = git(root, "stash", "show", "-p", "stash@{0}")
    assert "+an idea for later" in patch and "+# tried by hand" in patch
    assert "stashed as" in again.text()
    assert [r.status for r in recs] == ["keep", "discard", "keep"]
    git(root, "stash", "pop", "-q")  # and they come back
    assert "an idea for later" in (root / "NOTES.md").read_text()


# ---- 2. edits and commits made while a run is going ------------------------------------------


def gated(tmp_path: Path, n: int, *args: str) -> tuple[Path, Daemon, Path]:
    root = safety_repo(tmp_path)
    gate = tmp_path / "gate"
    plan = {str(n): {"mode": "gate"}}
    daemon = Daemon(root, *args, plan=plan, env={"SAFETY_GATE": str(gate)})
    daemon.until(Path(f"{gate}.waiting").exists)
    return root, daemon, gate


def test_edits_during_a_run_are_stashed_or_left_in_place(tmp_path: Path) -> None:
    root, daemon, gate = gated(tmp_path, 1, "--loop", "2")
    with open(root / "train.py", "a") as f:
        f.write("# x\n")
    with open(root / "NOTES.md", "a") as f:
        f.write("y\n")
    gate.write_text("")
    assert daemon.wait() == 0, daemon.text()
    recs = records(root)
    assert [r.status for r in recs] == ["keep", "discard", "keep"]
    # The in-scope edit is stashed under a message naming it; the other is left where it was,
    # through the decision's revert and the next experiment's edit step.
    assert stashes(root) == [
        "On autoresearch/" + recs[0].tag + ": autoresearch: your edit of train.py during #1"
    ]
    assert "+# x" in git(root, "stash", "show", "-p", "stash@{0}")
    assert (root / "NOTES.md").read_text() == NOTES + "y\n"
    assert git(root, "status", "--porcelain") == "M NOTES.md"
    events = recs[1].events
    assert any("your edit of train.py during #1: stashed as" in e for e in events), events
    assert "your edit of NOTES.md (outside the scope) is left in place" in events
    assert "your edit of NOTES.md (outside the scope) is left in place" in daemon.text()
    assert head_past_notes(root) == recs[2].commit


def test_a_commit_on_the_branch_during_a_run_stops_the_loop(tmp_path: Path) -> None:
    root, daemon, gate = gated(tmp_path, 1, "--loop", "2")
    with open(root / "NOTES.md", "a") as f:
        f.write("y\n")
    git(root, "commit", "-qam", "my notes")
    mine = git(root, "rev-parse", "HEAD")
    gate.write_text("")
    assert daemon.wait() == 1, daemon.text()
    assert f'{mine[:7]} "my notes"' in daemon.text() and "never resets them away" in daemon.text()
    assert git(root, "rev-parse", "HEAD") == mine  # on the branch, not reset away
    recs = records(root)
    assert len(recs) == 2 and "stopped, nothing reset" in recs[1].events[-1]
    # A resume refuses too, naming the commit, and changes nothing.
    again = Daemon(root, "--loop", "1")
    assert again.wait() == 1
    assert f'{mine[:7]} "my notes"' in again.text(), again.text()
    assert git(root, "rev-parse", "HEAD") == mine and len(records(root)) == 2


# ---- 3. resume checks HEAD, the refs and the tables against each other -----------------------


def test_resume_without_the_journal_runs_the_undecided_commit_again(tmp_path: Path) -> None:
    root = safety_repo(tmp_path)
    daemon = Daemon(root, plan={"2": {"mode": "slow"}})
    daemon.until(run_log_says(root, 2, "training"))
    undecided = git(root, "rev-parse", "HEAD")
    daemon.kill9()
    kill_run(root)
    (root / ".autoresearch" / "state.json").unlink()
    again, recs = resume(root, env=FAST)
    tag = recs[0].tag
    assert "experiment #2 (" in again.text() and "has a ref but no record" in again.text()
    assert ref(root, tag, 2) == undecided == recs[2].commit  # the ref was not overwritten
    assert recs[2].parent == recs[0].commit and recs[2].status == "keep"
    assert len(recs) == 4 and recs[3].parent == recs[2].commit


def test_truncated_tables_reuse_no_number_and_keep_no_worse_experiment(tmp_path: Path) -> None:
    root = safety_repo(tmp_path)
    daemon = Daemon(root, "--loop", "3", plan={"3": {"lr": 0.31}})
    assert daemon.wait() == 0, daemon.text()
    recs = assert_consistent(root)
    assert [r.status for r in recs] == ["keep", "discard", "keep", "keep"]
    tag, kept = recs[0].tag, recs[3].commit
    for name in ("results.tsv", ".autoresearch/experiments.jsonl"):  # #3's lines are lost
        path = root / name
        lines = path.read_text().splitlines(keepends=True)
        path.write_text("".join(lines[:-1]))
    again = Daemon(root, "--loop", "1", plan={"4": {"lr": 0.32}})  # worse than #3, better than #2
    assert again.wait() == 0, again.text()
    recs = assert_consistent(root)
    assert ref(root, tag, 3) == kept == recs[3].commit and recs[3].status == "keep"
    assert [r.status for r in recs] == ["keep", "discard", "keep", "keep", "discard"]
    assert head_past_notes(root) == kept


def test_resume_undoes_a_discard_left_at_head_without_a_journal(tmp_path: Path) -> None:
    root = safety_repo(tmp_path)
    daemon = Daemon(root, pause="recorded:1")
    settle(daemon, lambda: len(records(root)) == 2)
    discarded = records(root)[1]
    daemon.kill9()
    (root / ".autoresearch" / "state.json").unlink()
    again, recs = resume(root)
    assert f'undid {discarded.short} "autoresearch #1:' in again.text(), again.text()
    assert recs[2].parent == recs[0].commit


# ---- 10. an interrupted experiment runs again, once ------------------------------------------


def test_an_experiment_interrupted_twice_is_recorded_as_a_crash(tmp_path: Path) -> None:
    root = safety_repo(tmp_path)
    daemon = Daemon(root, plan={"2": {"mode": "slow"}})
    daemon.until(run_log_says(root, 2, "training"))
    committed = git(root, "rev-parse", "HEAD")
    daemon.kill9()
    kill_run(root)
    second = Daemon(root, "--loop", "1")  # runs #2 again: slow again, killed again
    second.until(lambda: RERUN_EVENT in (journal(root).get("record") or {}).get("events", []))
    second.until(run_log_says(root, 2, "training"))
    second.kill9()
    kill_run(root)
    again, recs = resume(root, env=FAST)
    assert "experiment #2 was interrupted again" in again.text()
    assert recs[2].commit == committed and recs[2].status == "crash"
    assert recs[2].crash_kind == "interrupted" and "interrupted again" in recs[2].reason
    assert len(recs) == 4


# ---- 8. a kill during the session's setup ----------------------------------------------------

# A slow pre-commit hook: says it runs, then waits for the test to say how it ends.
HOOK = """\
#!/bin/sh
touch "{dir}/hook-running"
while [ ! -e "{dir}/hook-go" ]; do sleep 0.05; done
code=$(cat "{dir}/hook-go")
touch "{dir}/hook-done"
exit $code
"""


@pytest.mark.parametrize("hook_exit", [0, 1], ids=["commit-made", "commit-not-made"])
def test_a_kill_during_setup_is_finished_by_the_next_start(tmp_path: Path, hook_exit: int) -> None:
    root = safety_repo(tmp_path)
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text(HOOK.format(dir=tmp_path))
    hook.chmod(0o755)
    daemon = Daemon(root, "--loop", "1")
    daemon.until((tmp_path / "hook-running").exists)
    daemon.kill9()  # git and its hook live on: the commit is made or fails without the daemon
    (tmp_path / "hook-go").write_text(str(hook_exit))
    deadline = time.monotonic() + 30
    while not (tmp_path / "hook-done").exists() or (root / ".git" / "index.lock").exists():
        assert time.monotonic() < deadline, "git did not finish"
        time.sleep(0.05)
    hook.unlink()
    again = Daemon(root, "--loop", "1")
    assert again.wait() == 0, again.text()
    recs = assert_consistent(root)
    assert [r.status for r in recs] == ["keep", "discard"]
    subjects = git(root, "log", "--format=%s").splitlines()
    assert subjects.count(f"autoresearch: set up session {recs[0].tag}") == 1
    ignored = (root / ".gitignore").read_text().splitlines()
    assert ignored.count("results.tsv") == 1 and ignored.count(".autoresearch/") == 1


def test_a_start_right_after_a_kill_during_setup_waits_for_the_killed_commit(
    tmp_path: Path,
) -> None:
    root = safety_repo(tmp_path)
    hook = root / ".git" / "hooks" / "pre-commit"
    hook.write_text(HOOK.format(dir=tmp_path))
    hook.chmod(0o755)
    daemon = Daemon(root, "--loop", "1")
    daemon.until((tmp_path / "hook-running").exists)
    daemon.kill9()  # its git commit and the hook live on, in their own session
    again = Daemon(root, "--loop", "1")  # at once, while that commit is still being made
    time.sleep(1.0)  # (only ordering: the test passes whichever start reaches git first)
    (tmp_path / "hook-go").write_text("0")
    assert again.wait() == 0, again.text()
    recs = assert_consistent(root)
    assert [r.status for r in recs] == ["keep", "discard"]
    subjects = git(root, "log", "--format=%s").splitlines()
    assert subjects.count(f"autoresearch: set up session {recs[0].tag}") == 1
    assert "Traceback" not in again.text() and "Cmd('git')" not in again.text()


# ---- 4. the sweep's records match their commits after a kill --------------------------------

SWEEP_CONFIG = f"""\
[metric]
name = "score"
direction = "lower"
pattern = '^score:\\s*(\\S+)'

[run]
command = "{sys.executable} train.py"
timeout = 30

[scope]
files = ["train.py"]

[agent]
kind = "sweep"
seed = 7
"""


def constants_at(root: Path, rev: str) -> dict[str, float]:
    text = git(root, "show", f"{rev}:train.py")
    return {m["name"]: float(m["value"]) for m in CONSTANT.finditer(text)}


@pytest.mark.parametrize("phase", ["editing", "committed", "decided", "recorded"])
def test_sweep_records_match_their_commits_after_a_kill(tmp_path: Path, phase: str) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": CONF_TRAIN, "autoresearch.toml": SWEEP_CONFIG})
    daemon = Daemon(root, pause=f"{phase}:1")
    settle(
        daemon, at_step(root, phase, 1) if phase != "recorded" else lambda: len(records(root)) == 2
    )
    daemon.kill9()
    again = Daemon(root, "--loop", "3")  # below the notes refresh at #5
    assert again.wait() == 0, again.text()
    recs = assert_consistent(root)
    assert len(recs) >= 4
    for rec in recs[1:]:
        # Every parameter recorded is the committed code's, and the description's change is
        # the commit's change.
        at_commit, at_parent = constants_at(root, rec.commit), constants_at(root, rec.parent)
        assert rec.params in ({}, at_commit), (rec.number, rec.description, rec.params, at_commit)
        name, old, _, new = rec.description.split()
        assert (float(old), float(new)) == (at_parent[name], at_commit[name]), rec.description


# ---- attempt refs are created, never moved ---------------------------------------------------


def test_an_attempt_ref_is_never_overwritten(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    second = git(repo, "rev-parse", "HEAD")
    r = Repo(repo)
    try:
        r.set_ref("refs/autoresearch/t/1", first)
        r.set_ref("refs/autoresearch/t/1", first)  # the same again: nothing to do
        for packed in (False, True):
            if packed:
                git(repo, "pack-refs", "--all")
            with pytest.raises(RepoError, match="never overwritten"):
                r.set_ref("refs/autoresearch/t/1", second)
            assert git(repo, "rev-parse", "refs/autoresearch/t/1") == first
        r.set_ref("refs/autoresearch/t/1", second, old=first)  # a retry taking over its number
        assert git(repo, "rev-parse", "refs/autoresearch/t/1") == second
        assert r.attempt_refs("t") == {1: second}
    finally:
        r.close()


def test_an_abandoned_edit_keeps_a_persons_edit_outside_the_scope(tmp_path: Path) -> None:
    root = safety_repo(tmp_path)
    gate, flag = tmp_path / "gate", tmp_path / "agent-editing"
    plan = {"1": {"mode": "gate"}, "2": {"hang": str(flag)}}
    daemon = Daemon(root, "--loop", "3", plan=plan, env={"SAFETY_GATE": str(gate)})
    daemon.until(Path(f"{gate}.waiting").exists)
    with open(root / "NOTES.md", "a") as f:  # the person's, during #1's run: left in place
        f.write("y\n")
    gate.write_text("")
    daemon.until(lambda: flag.exists() and "# half an edit" in (root / "train.py").read_text())
    daemon.proc.send_signal(signal.SIGINT)  # Ctrl-C twice: abandon #2's edit now
    daemon.until(lambda: "stopping after this experiment" in daemon.text())
    daemon.proc.send_signal(signal.SIGINT)
    assert daemon.wait() == 130, daemon.text()
    assert (root / "NOTES.md").read_text() == NOTES + "y\n"
    assert "# half an edit" not in (root / "train.py").read_text()
    assert git(root, "status", "--porcelain") == "M NOTES.md"
    assert len(records(root)) == 2
