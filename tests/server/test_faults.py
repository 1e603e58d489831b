"""The fault suite: kill -9 at every step, runaway commands, disk and git trouble.

Real `autoresearch run` processes on real repositories. A test-only hook
(journal.PAUSE_ENV) parks the daemon at a named point so it is killed exactly there; the
resumed run must leave results and git consistent, with no process of the killed run alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec
import psutil
import pytest
from branch_head import head_past_notes
from conftest import ScriptedProposer, alive_with_env, git, make_config, make_repo, set_lr

from autoresearch import repo as repo_module
from autoresearch.bootstrap import RERUN_EVENT
from autoresearch.experiment import Experiment
from autoresearch.journal import PAUSE_ENV
from autoresearch.ledger import LedgerError
from autoresearch.loop import Loop, LoopStopped
from autoresearch.repo import RepoError

# MODE is set by the fault agent per experiment; each mode is one kind of misbehaving run.
TRAIN = """\
import os, signal, subprocess, sys, time
LR = 0.5
MODE = "normal"

print("training...", flush=True)
if (MODE == "slow" and not os.environ.get("FAULT_FAST_RUNS")) or os.environ.get("FAULT_SLOW_RUNS"):
    time.sleep(120)
elif MODE == "runaway":  # ignores SIGTERM, forks a grandchild and a double-forked daemon
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    subprocess.Popen(["sh", "-c", "trap '' TERM; sleep 300"])
    subprocess.Popen(["sh", "-c", "setsid sh -c 'trap \\"\\" TERM; sleep 300' &"])
    time.sleep(300)
elif MODE == "flood":  # would fill the disk: gigabytes of output
    os.execvp("yes", ["yes", "0123456789abcdef" * 4])
elif MODE == "hang":
    time.sleep(300)
print(f"score: {abs(LR - 0.3):.6f}", flush=True)
if MODE == "close":  # closes its output early, then goes on working
    os.close(1)
    os.close(2)
    time.sleep(0.5)
"""

# The edit step: a real agent process (agent.kind = "command"). FAULT_PLAN maps an experiment
# number to {"lr", "mode", "hang"}; by default odd numbers are discards, even ones keeps.
AGENT = """\
import json, os, pathlib, re, sys, time
n = int(sys.argv[1])
plan = json.loads(os.environ.get("FAULT_PLAN", "{}")).get(str(n), {})
lr = plan.get("lr", 0.9 if n % 2 else 0.3 + 0.1 / n)
mode = plan.get("mode", "normal")
path = pathlib.Path("train.py")
text = re.sub(r"(?m)^LR = .*$", f"LR = {lr!r}", path.read_text())
text = re.sub(r"(?m)^MODE = .*$", f"MODE = {mode!r}", text)
if plan.get("hang"):  # killed mid-edit: half an edit in the tree, the agent still running
    path.write_text(text + "# half an edit\\n")
    pathlib.Path(plan["hang"]).write_text(str(os.getpid()))
    time.sleep(300)
path.write_text(text)
pathlib.Path(os.environ["AUTORESEARCH_DESCRIPTION_FILE"]).write_text(f"lr {lr:.4g} {mode}")
"""


def fault_repo(tmp: Path, timeout: float = 30, max_log_mb: float = 2048) -> Path:
    agent = tmp / "agent.py"
    agent.write_text(AGENT)
    config = f"""\
[metric]
name = "score"
direction = "lower"
pattern = '^score:\\s*(\\S+)'

[run]
command = "{sys.executable} train.py"
timeout = {timeout}
max_log_mb = {max_log_mb}

[scope]
files = ["train.py"]

[agent]
kind = "command"
command = "{sys.executable} {agent} {{number}}"
timeout = 600
"""
    return make_repo(tmp / "repo", {"train.py": TRAIN, "autoresearch.toml": config})


class Daemon:
    """One `autoresearch run` process; its environment carries a session id to find leftovers."""

    def __init__(
        self,
        root: Path,
        *args: str,
        plan: dict | None = None,
        pause: str = "",
        env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.session = uuid.uuid4().hex
        env = {**os.environ, **(env or {}), "FAULT_SESSION": self.session}
        env["FAULT_PLAN"] = json.dumps(plan or {})
        env.pop(PAUSE_ENV, None)
        if pause:
            env[PAUSE_ENV] = pause
        STARTED.append(self)
        self.output = root.parent / f"daemon-{self.session[:8]}.log"
        with open(self.output, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "autoresearch", "run", "--dir", str(root), *args],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def text(self) -> str:
        return self.output.read_text(errors="replace")

    def wait(self, timeout: float = 60) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"the daemon did not finish:\n{self.text()}") from None

    def until(self, check: Callable[[], object], timeout: float = 40) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None:
                raise AssertionError(f"the daemon exited early:\n{self.text()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting; daemon output:\n{self.text()}")
            time.sleep(0.02)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)  # the daemon only: its children live on
        self.proc.wait(10)

    def leftovers(self) -> list[psutil.Process]:
        return alive_with_env("FAULT_SESSION", self.session)


STARTED: list[Daemon] = []


@pytest.fixture(autouse=True)
def _no_stray_processes() -> object:
    """Whatever a failing test left running (a daemon, a sleeping agent, a runaway) is killed."""
    yield
    while STARTED:
        daemon = STARTED.pop()
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
        for proc in daemon.leftovers():
            with contextlib.suppress(psutil.Error):
                proc.kill()


def journal(root: Path) -> dict:
    try:
        return json.loads((root / ".autoresearch" / "state.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def at_step(root: Path, step: str, number: int) -> Callable[[], bool]:
    return lambda: journal(root).get("step") == step and journal(root).get("number") == number


def records(root: Path) -> list[Experiment]:
    path = root / ".autoresearch" / "experiments.jsonl"
    lines = path.read_bytes().splitlines() if path.exists() else []
    return [msgspec.json.decode(line, type=Experiment) for line in lines]


def rows(root: Path) -> int:
    path = root / "results.tsv"
    return path.read_text().count("\n") - 1 if path.exists() else 0


def assert_consistent(root: Path) -> list[Experiment]:
    """One row per decided experiment in both files, whole lines only, git where it belongs."""
    text = (root / "results.tsv").read_text()
    assert text.endswith("\n"), "a half-written last line"
    lines = text.splitlines()
    assert lines[0] == "commit\tmetric\tmemory_gb\tstatus\tdescription"
    assert all(line.count("\t") == 4 for line in lines), lines
    recs = records(root)
    assert [r.number for r in recs] == list(range(len(recs))), "a lost or doubled record"
    rows = [line.split("\t") for line in lines[1:]]
    assert len(rows) == len(recs), (rows, [r.number for r in recs])
    for row, rec in zip(rows, recs, strict=True):
        assert (row[0], row[3]) == (rec.commit[:7], rec.status)
    assert len({r.commit for r in recs}) == len(recs), "an experiment recorded twice"
    tag = recs[0].tag
    assert git(root, "symbolic-ref", "--short", "HEAD") == f"autoresearch/{tag}"
    keeps = [r for r in recs if r.status == "keep"]
    assert head_past_notes(root) == keeps[-1].commit, "HEAD is not the last keep"
    assert git(root, "status", "--porcelain") == "", "the tree is not clean"
    for rec in recs:
        ref = f"refs/autoresearch/{tag}/{rec.number}"
        assert git(root, "rev-parse", ref) == rec.commit, f"{ref} is missing or wrong"
    assert journal(root).get("step") == "idle"
    return recs


def settle(daemon: Daemon, check: Callable[[], bool]) -> None:
    """Wait for the pause point, and make sure the daemon really stopped there."""
    daemon.until(check)
    time.sleep(0.3)
    assert check(), "the daemon went past the pause point"


def resume(
    root: Path, loops: int = 1, env: dict[str, str] | None = None
) -> tuple[Daemon, list[Experiment]]:
    again = Daemon(root, "--loop", str(loops), env=env)
    assert again.wait() == 0, again.text()
    assert "recovered:" in again.text(), again.text()
    return again, assert_consistent(root)


# ---- kill -9 at every step --------------------------------------------------------------------


def test_kill_while_the_agent_is_editing(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    flag = tmp_path / "agent-editing"
    daemon = Daemon(root, plan={"2": {"hang": str(flag)}})
    daemon.until(flag.exists)
    agent = psutil.Process(int(flag.read_text()))
    assert "# half an edit" in (root / "train.py").read_text()
    daemon.kill9()
    assert agent.is_running()  # the agent outlived the daemon, as it would
    again, recs = resume(root)
    assert "killed the edit step's processes" in again.text()
    assert not agent.is_running() or agent.status() == psutil.STATUS_ZOMBIE
    assert daemon.leftovers() == []
    # The unfinished edit was thrown away, its number reused by the resumed run.
    assert [r.status for r in recs] == ["keep", "discard", "keep"]
    assert "# half an edit" not in (root / "train.py").read_text()


def test_kill_after_the_commit(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    daemon = Daemon(root, pause="committed:2")
    settle(daemon, at_step(root, "committed", 2))
    committed = journal(root)["commit"]
    daemon.kill9()
    again, recs = resume(root, loops=2)  # two: numbering goes on right after a recovery
    # The interrupted experiment runs again on its own commit (not counted in --loop 2).
    assert "experiment #2 was interrupted: its commit" in again.text()
    assert recs[2].commit == committed and recs[2].status == "keep"
    assert RERUN_EVENT in recs[2].events and len(recs) == 5
    assert daemon.leftovers() == []


def test_kill_while_the_command_runs(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    daemon = Daemon(root, plan={"2": {"mode": "slow"}})
    runs = root / ".autoresearch" / "runs"
    daemon.until(lambda: any("training" in p.read_text() for p in runs.glob("*-2.log")))
    marker = journal(root)["marker"]
    assert alive_with_env("AUTORESEARCH_RUN_ID", marker), "the run should be running"
    daemon.kill9()
    assert alive_with_env("AUTORESEARCH_RUN_ID", marker), "the run outlives the daemon"
    again, recs = resume(root, env={"FAULT_FAST_RUNS": "1"})
    assert "killed the processes left running by experiment #2" in again.text()
    assert alive_with_env("AUTORESEARCH_RUN_ID", marker) == []
    assert daemon.leftovers() == []
    # Re-run once on the same commit (its slow mode made fast for the second run).
    assert recs[2].status == "keep" and RERUN_EVENT in recs[2].events


def test_kill_while_the_baseline_runs(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    daemon = Daemon(root, env={"FAULT_SLOW_RUNS": "1"})
    runs = root / ".autoresearch" / "runs"
    daemon.until(lambda: any("training" in p.read_text() for p in runs.glob("*-0.log")))
    marker = journal(root)["marker"]
    daemon.kill9()
    again, recs = resume(root)
    assert "the baseline was interrupted: it runs again" in again.text()
    assert alive_with_env("AUTORESEARCH_RUN_ID", marker) == []
    assert daemon.leftovers() == []
    assert [(r.number, r.status, r.description) for r in recs] == [
        (0, "keep", "baseline"),
        (1, "discard", "lr 0.9 normal"),
    ]


def test_kill_after_the_run_before_the_row_mid_write(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    daemon = Daemon(root, pause="decided:2")
    settle(daemon, at_step(root, "decided", 2))
    daemon.kill9()
    # As if the kill had landed in the middle of writing the row: half a line, no newline.
    decided = journal(root)["record"]
    with open(root / "results.tsv", "a") as f:
        f.write(f"{decided['commit'][:7]}\t0.05")
    _, recs = resume(root)
    assert recs[2].status == "keep" and recs[2].commit == decided["commit"]
    assert len(recs) == 4 and daemon.leftovers() == []


def test_kill_between_the_two_record_files(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    daemon = Daemon(root, pause="row-written:1")
    settle(daemon, lambda: rows(root) == 2)
    assert len(records(root)) == 1  # results.tsv has #1, experiments.jsonl does not yet
    daemon.kill9()
    _, recs = resume(root)
    assert [r.status for r in recs] == ["keep", "discard", "keep"]
    assert recs[1].parent == recs[0].commit and recs[1].runtime_s > 0  # the whole record


def test_kill_during_the_revert_of_a_discard(tmp_path: Path) -> None:
    root = fault_repo(tmp_path)
    daemon = Daemon(root, pause="recorded:1")
    settle(daemon, lambda: len(records(root)) == 2)
    discarded = records(root)[1]
    assert discarded.status == "discard"
    assert git(root, "rev-parse", "HEAD") == discarded.commit  # not reverted yet
    daemon.kill9()
    _, recs = resume(root)
    assert [r.status for r in recs] == ["keep", "discard", "keep"]
    assert recs[2].parent == recs[0].commit  # #2 was built on the last keep, not on #1


# ---- runaway commands, through the CLI --------------------------------------------------------


def test_runaway_commands_are_contained(tmp_path: Path) -> None:
    root = fault_repo(tmp_path, timeout=2, max_log_mb=20)
    plan = {
        "1": {"mode": "runaway"},
        "2": {"mode": "flood"},
        "3": {"mode": "close", "lr": 0.31},
        "4": {"mode": "hang"},
    }
    daemon = Daemon(root, "--loop", "4", plan=plan)
    assert daemon.wait(120) == 0, daemon.text()
    recs = assert_consistent(root)
    assert [(r.status, r.crash_kind) for r in recs[1:]] == [
        ("crash", "timeout"),
        ("crash", "log_limit"),
        ("keep", None),
        ("crash", "timeout"),
    ]
    assert recs[3].metric == pytest.approx(0.01)
    flood = root / ".autoresearch" / "runs" / f"{recs[0].tag}-2.log"
    assert flood.stat().st_size <= 20 * 1024 * 1024 + 100
    # The SIGTERM-proof grandchild and the double-forked setsid daemon are gone with the rest.
    assert daemon.leftovers() == []


# ---- disk and git trouble, in-process loops over real repositories ---------------------------


def run_loop(root: Path, edits: list, limit: int, **overrides) -> Loop:
    loop = Loop(root, make_config(**overrides), ScriptedProposer(edits), limit=limit)
    loop.run()
    return loop


def chattr(path: Path, flag: str) -> bool:
    done = subprocess.run(["chattr", flag, str(path)], capture_output=True, check=False)
    return done.returncode == 0


@pytest.mark.skipif(shutil.which("chattr") is None, reason="no chattr to make a file immutable")
def test_results_become_read_only_mid_loop(repo: Path) -> None:
    results = repo / "results.tsv"

    def lock_results(root: Path) -> str:
        if not chattr(results, "+i"):
            pytest.skip("this file system does not support the immutable attribute")
        return set_lr("0.35")(root)

    try:
        with pytest.raises(LedgerError) as info:
            run_loop(repo, [lock_results], 1)
        assert str(info.value) == (
            f"Cannot write experiment #1 to {results} (Operation not permitted). To fix: make it"
            " writable (chmod u+w; chattr -i if it is immutable), then resume: the decision is"
            " kept in the journal and written then."
        )
    finally:
        chattr(results, "-i")
    run_loop(repo, [set_lr("0.32")], 1)
    recs = assert_consistent(repo)
    assert [r.description for r in recs] == ["baseline", "LR -> 0.35", "LR -> 0.32"]


def test_a_git_index_lock_held_briefly_is_waited_for(repo: Path) -> None:
    lock = repo / ".git" / "index.lock"

    def edit_and_hold_the_index(root: Path) -> str:
        lock.write_text("")
        threading.Timer(1.0, lock.unlink).start()  # another git process, done after a second
        return set_lr("0.35")(root)

    run_loop(repo, [edit_and_hold_the_index], 1)
    assert [r.status for r in assert_consistent(repo)] == ["keep", "keep"]


def test_a_stale_git_index_lock_stops_the_loop_clearly(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(repo_module, "INDEX_WAIT_S", 1.0)
    lock = repo / ".git" / "index.lock"

    def edit_and_crash_holding_the_index(root: Path) -> str:
        lock.write_text("")
        return set_lr("0.35")(root)

    with pytest.raises(RepoError) as info:
        run_loop(repo, [edit_and_crash_holding_the_index], 1)
    assert str(info.value) == (
        f"{lock} exists: another git process is running or crashed (waited 1 s). Wait for it,"
        " or delete that file if no git command is running, then resume."
    )
    lock.unlink()
    run_loop(repo, [set_lr("0.32")], 1)
    recs = assert_consistent(repo)
    assert [r.description for r in recs] == ["baseline", "LR -> 0.32"]


def test_a_pre_commit_hook_failing_mid_loop(repo: Path) -> None:
    hook = repo / ".git" / "hooks" / "pre-commit"

    def edit_and_install_a_hook(root: Path) -> str:
        hook.write_text("#!/bin/sh\necho 'black would reformat train.py' >&2\nexit 1\n")
        hook.chmod(0o755)
        return set_lr("0.35")(root)

    with pytest.raises(LoopStopped, match="git commit of experiment #1 failed") as info:
        run_loop(repo, [edit_and_install_a_hook], 1)
    assert "black would reformat train.py" in str(info.value)
    recs = assert_consistent(repo)  # the edit is undone, nothing recorded for it
    assert len(recs) == 1 and "LR = 0.5" in (repo / "train.py").read_text()
    hook.unlink()
    run_loop(repo, [set_lr("0.32")], 1)
    assert len(assert_consistent(repo)) == 2


def test_a_huge_untracked_file_in_scope_is_left_alone(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"src/train.py": TRAIN})
    huge = root / "src" / "checkpoint.bin"
    with open(huge, "wb") as f:  # 4 GB, sparse: the user's, untracked, inside the scope
        f.truncate(4 << 30)

    def edit(r: Path) -> str:
        path = r / "src" / "train.py"
        path.write_text(path.read_text().replace("LR = 0.5", "LR = 0.35"))
        return "LR -> 0.35"

    overrides = {"run__command": f"{sys.executable} src/train.py", "scope__files": ["src/*"]}
    loop = run_loop(root, [edit], 1, scope__off_limits=[], **overrides)
    recs = assert_consistent_with_untracked(root, {"src/checkpoint.bin"})
    assert [r.status for r in recs] == ["keep", "keep"] and loop.tag
    assert huge.stat().st_size == 4 << 30
    assert git(root, "ls-files", "src") == "src/train.py"


def assert_consistent_with_untracked(root: Path, untracked: set[str]) -> list[Experiment]:
    status = git(root, "status", "--porcelain", "--untracked-files=all").splitlines()
    assert {line[3:] for line in status} == untracked and all(s[:2] == "??" for s in status)
    (root / ".git" / "info" / "exclude").write_text("\n".join(sorted(untracked)) + "\n")
    return assert_consistent(root)


# ---- git state read in-process (repo.py skips git processes on the hot path) -----------------


def test_refs_read_in_process_agree_with_git(repo: Path, tmp_path: Path) -> None:
    from autoresearch.repo import Repo

    def check(root: Path) -> None:
        r = Repo(root)
        try:
            assert r.head() == git(root, "rev-parse", "HEAD")
            branch = subprocess.run(
                ["git", "-C", str(root), "symbolic-ref", "--short", "-q", "HEAD"],
                capture_output=True,
                text=True,
            ).stdout.strip()
            assert r.branch() == (branch or None)
            for ref in ("refs/heads/main", "refs/heads/feature/x", "refs/stash", "HEAD"):
                done = subprocess.run(
                    ["git", "-C", str(root), "rev-parse", "--verify", "-q", f"{ref}^{{commit}}"],
                    capture_output=True,
                    text=True,
                )
                assert r.resolve(ref) == (done.stdout.strip() or None), ref
            ref = f"refs/autoresearch/t/{uuid.uuid4().hex[:8]}"
            r.set_ref(ref, r.head())
            assert git(root, "rev-parse", ref) == r.head()
            assert r.untracked() == {c.path for c in r.status() if c.untracked}
        finally:
            r.close()

    git(repo, "branch", "feature/x")
    (repo / "new dir").mkdir()
    (repo / "new dir" / "notes é.txt").write_text("untracked, in an untracked directory")
    (repo / ".gitignore").write_text("*.log\n")
    (repo / "ignored.log").write_text("ignored")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore logs")
    check(repo)
    git(repo, "pack-refs", "--all")  # refs only in .git/packed-refs now
    check(repo)
    git(repo, "switch", "-q", "feature/x")
    check(repo)
    git(repo, "checkout", "-q", "--detach")
    check(repo)
    git(repo, "switch", "-q", "main")
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), "-b", "wt-branch")
    check(tmp_path / "wt")  # HEAD in the worktree's git dir, refs in the common one


# ---- run.log: extraction reads from the end, whatever the log holds -------------------------


def test_extraction_from_the_end_agrees_with_a_full_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import random
    import re

    from autoresearch import extract

    rng = random.Random(7)
    pattern = re.compile(rb"^score:\s*(\S+)", re.MULTILINE)
    path = tmp_path / "run.log"
    for trial in range(60):
        lines = []
        for i in range(rng.randint(0, 2000)):
            roll = rng.random()
            if roll < 0.01:
                lines.append(f"score: {i}".encode())
            elif roll < 0.02:  # a progress bar without newlines, tens of KiB long
                lines.append(b"#" * rng.randint(1000, 100_000))
            else:
                lines.append(b"step %d | loss %f" % (i, rng.random()))
        data = b"\n".join(lines) + (b"\n" if rng.random() < 0.5 else b"")
        path.write_bytes(data)
        expected = [m.group(1) for m in pattern.finditer(data)]
        for chunk in (1 << 20, 4096, 64):
            monkeypatch.setattr(extract, "CHUNK", chunk)
            got = extract.last_match(path, pattern)
            assert got == (expected[-1] if expected else None), (trial, chunk)


# ---- the bad-inputs catalogue (tests/bench/BAD_INPUTS.md) ------------------------------------


def test_every_bad_input_gets_a_clear_error() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    try:
        import catalogue
    finally:
        sys.path.pop(0)
    results = catalogue.run_all()
    assert len(results) >= 30
    assert catalogue.problems(results) == []
