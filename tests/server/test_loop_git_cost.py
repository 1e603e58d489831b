"""The loop's own cost per experiment (issue #12: fewer git processes than a bash loop doing the
same steps), and that what made it cheaper loses nothing of a person's.

- A keep costs `git status` + `git commit`; a discard `git status` before its reset, which the
  next edit step starts from, and the reset. The edit step's own status (before the agent) is
  needed only after a keep.
- The status a discard carries to the next edit is dropped by a pause (a person may edit then).
- The loop's commits leave git's automatic maintenance to the loop, which runs it every
  MAINTAIN_EVERY experiments and when it stops (a `git commit` starts it after every commit).
- The journal is replaced by renames that always leave one whole entry to read.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import git as gitpython
import msgspec
from conftest import EVAL, TRAIN, ScriptedProposer, git, make_config, make_repo, set_lr

from autoresearch.journal import JOURNAL_FILE, Entry, Journal
from autoresearch.loop import Loop
from autoresearch.protocol import ExperimentRecorded, LoopState


@contextlib.contextmanager
def git_calls() -> Iterator[list[str]]:
    """The subcommand of every git process the loop starts (through GitPython)."""
    calls: list[str] = []
    original = gitpython.cmd.Git.execute

    def execute(self: gitpython.cmd.Git, command: list[str], *args: object, **kw: object) -> object:
        calls.append(next((w for w in command[1:] if not w.startswith("-")), "?"))
        return original(self, command, *args, **kw)

    gitpython.cmd.Git.execute = execute  # type: ignore[method-assign, assignment]
    try:
        yield calls
    finally:
        gitpython.cmd.Git.execute = original  # type: ignore[method-assign]


def test_a_keep_costs_two_git_processes_and_a_discard_two_more(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    # baseline 0.24; 0.35 keep (0.09); 0.9 discard; 0.31 keep (0.05); 2.0 discard
    proposer = ScriptedProposer([set_lr("0.35"), set_lr("0.9"), set_lr("0.31"), set_lr("2.0")])
    per_experiment: dict[int, list[str]] = {}
    with git_calls() as calls:

        def emit(event: object) -> None:
            if isinstance(event, ExperimentRecorded):
                per_experiment[event.experiment.number] = list(calls)
                calls.clear()

        Loop(repo, make_config(), proposer, emit=emit, limit=4).run()
    statuses = [e.status for e in proposer.observed]
    assert statuses == ["keep", "keep", "discard", "keep", "discard"]
    # #2, a discard after a keep: the edit step's status, the scope check's, the commit; the
    # status that sets a person's edits aside before the reset, the reset.
    assert per_experiment[2] == ["status", "status", "commit", "status", "reset"]
    # #3, a keep after a discard: the discard's status was the edit step's; scope check, commit.
    assert per_experiment[3] == ["status", "commit"]
    assert per_experiment[4] == ["status", "status", "commit", "status", "reset"]
    assert git(repo, "status", "--porcelain") == ""


def test_a_new_file_is_committed_with_the_edited_ones(tmp_path: Path) -> None:
    """The cheaper commit (--include) would leave a new file out without a word: an edit that
    adds one is committed the other way, whole."""
    files = {"train.py": TRAIN, "evaluate.py": EVAL, "lib/data.py": "BATCH = 8\n"}
    repo = make_repo(tmp_path / "repo", files)

    def edit_and_add(root: Path) -> str:
        set_lr("0.35")(root)
        (root / "lib" / "schedule.py").write_text("WARMUP = 10\n")
        return "LR -> 0.35 with a schedule"

    proposer = ScriptedProposer([edit_and_add, set_lr("0.31")])
    loop = Loop(
        repo,
        make_config(scope__files=["train.py", "lib/*.py"]),
        proposer,
        emit=lambda _: None,
        limit=2,
    )
    loop.run()
    assert [e.status for e in proposer.observed] == ["keep", "keep", "keep"]
    first = git(repo, "show", "--name-only", "--format=", f"refs/autoresearch/{loop.tag}/1")
    assert first.split() == ["lib/schedule.py", "train.py"]
    assert git(repo, "status", "--porcelain") == ""


def test_a_persons_edit_while_paused_after_a_discard_is_theirs(tmp_path: Path) -> None:
    """The discard's status may not stand for the next edit step when the loop paused between:
    the edit made meanwhile would look like the agent's, outside the scope, and be reverted."""
    repo = make_repo(
        tmp_path / "repo", {"train.py": TRAIN, "evaluate.py": EVAL, "notes.md": "mine\n"}
    )
    proposer = ScriptedProposer([set_lr("0.9"), set_lr("0.35")])
    paused = threading.Event()
    loop: Loop

    def emit(event: object) -> None:
        if isinstance(event, ExperimentRecorded) and event.experiment.number == 1:
            loop.pause()
        if isinstance(event, LoopState) and event.phase == "paused":
            paused.set()

    loop = Loop(repo, make_config(), proposer, emit=emit, limit=2)
    worker = threading.Thread(target=loop.run)
    worker.start()
    try:
        assert paused.wait(60), "the loop never paused after #1"
        (repo / "notes.md").write_text("mine, edited while the loop was paused\n")
    finally:
        loop.resume()
        worker.join(60)
    assert not worker.is_alive()
    assert [e.status for e in proposer.observed] == ["keep", "discard", "keep"]
    assert (repo / "notes.md").read_text() == "mine, edited while the loop was paused\n"
    events = [event for e in proposer.observed for event in e.events]
    assert not [e for e in events if "notes.md" in e and "reverted" in e], events
    # Never committed into the experiment either.
    assert "notes.md" not in git(repo, "show", "--name-only", "--format=", "HEAD~0", "HEAD~1")


def test_a_persons_notes_edit_stashed_at_a_checkpoint_is_not_put_back(tmp_path: Path) -> None:
    """#5 is a discard and a checkpoint: the person's uncommitted edit of the notes, made during
    its run, is in the status the discard carries, and the notes refresh stashes it. When #6's
    agent then scribbles on the notes (outside the scope), they go back to the refreshed notes,
    never to the stashed edit as if it were still the person's file."""
    repo = make_repo(tmp_path / "repo")
    mine = "my notes, written during #5's run\n"
    scribbled = False

    def scribble(root: Path) -> str:
        nonlocal scribbled
        scribbled = True
        (root / "autoresearch.md").write_text("the agent's scribble\n")
        return set_lr("0.31")(root)

    edits = [set_lr("0.35"), set_lr("0.9"), set_lr("0.9"), set_lr("0.9"), set_lr("0.9"), scribble]
    proposer = ScriptedProposer(edits)

    after_6: list[str] = []

    def emit(event: object) -> None:
        if isinstance(event, LoopState) and event.phase == "running" and event.current == 5:
            (repo / "autoresearch.md").write_text(mine)
        if isinstance(event, ExperimentRecorded) and event.experiment.number == 6:
            after_6.append((repo / "autoresearch.md").read_text())  # before the stop's refresh

    Loop(repo, make_config(), proposer, emit=emit, limit=6).run()
    assert scribbled and [e.status for e in proposer.observed][5:] == ["discard", "keep"]
    assert not [e for e in proposer.observed[6].events if "put back" in e]
    assert after_6 == [git(repo, "show", "HEAD~1:autoresearch.md") + "\n"]  # #5's refresh
    stashed = git(repo, "stash", "list").splitlines()
    assert len(stashed) == 1 and "your uncommitted edit of autoresearch.md" in stashed[0]
    assert git(repo, "show", "stash@{0}:autoresearch.md") == mine.strip()


def test_git_maintenance_runs_when_the_loop_stops_not_after_each_commit(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    trace = tmp_path / "trace.json"
    env = {**os.environ, "GIT_TRACE2_EVENT": str(trace)}
    proposer = ScriptedProposer([set_lr("0.35"), set_lr("0.9"), set_lr("0.31")])
    with _environment(env):
        Loop(repo, make_config(), proposer, emit=lambda _: None, limit=3).run()
    events = [msgspec.json.decode(line) for line in trace.read_bytes().splitlines()]
    commands = {e["sid"]: e["argv"][1:3] for e in events if e["event"] == "start"}
    started_by_git = [e["argv"][1:2] for e in events if e["event"] == "child_start"]
    commits = [argv for argv in commands.values() if argv[:1] == ["commit"]]
    # The setup commit, three experiments (the discard's too), the notes at the end.
    assert len(commits) >= 5, commands
    # Not one of the commits started `git maintenance run --auto`; the loop ran it once, as it
    # stopped (MAINTAIN_EVERY is 50).
    assert ["maintenance"] not in started_by_git, started_by_git
    assert list(commands.values()).count(["maintenance", "run"]) == 1, commands


@contextlib.contextmanager
def _environment(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _entry(number: int) -> Entry:
    return Entry(tag="t", branch="autoresearch/t", step="editing", number=number)


def test_the_journal_set_aside_by_a_killed_write_is_read(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.write(_entry(1))
    journal.write(_entry(2))
    assert sorted(os.listdir(tmp_path)) == [JOURNAL_FILE]
    # Killed between its renames: the old entry renamed away, the new one not yet in place.
    os.rename(tmp_path / JOURNAL_FILE, journal.path.with_suffix(".previous"))
    (tmp_path / "state.tmp").write_bytes(msgspec.json.encode(_entry(3)))
    entry = journal.read()
    assert entry is not None and entry.number == 2
    journal.write(_entry(4))  # the next write completes the picture
    assert sorted(os.listdir(tmp_path)) == [JOURNAL_FILE]
    entry = journal.read()
    assert entry is not None and entry.number == 4


def test_the_journal_killed_before_its_old_entry_is_deleted_reads_the_new(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    journal.write(_entry(1))
    (journal.path.with_suffix(".previous")).write_bytes(msgspec.json.encode(_entry(0)))
    entry = journal.read()
    assert entry is not None and entry.number == 1
    journal.write(_entry(2))
    assert sorted(os.listdir(tmp_path)) == [JOURNAL_FILE]
