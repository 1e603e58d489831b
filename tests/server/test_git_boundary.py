"""Git only through repo.py, processes only through procs.py, and what that buys: few git
processes per experiment, counted on a real loop through a `git` wrapper on PATH; the diff
counts taken from `git commit`'s own summary match `git diff`'s; a metric extraction command
past its timeout is ended with everything it started."""

from __future__ import annotations

import ast
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ScriptedProposer, git, make_config, set_lr

from autoresearch import extract
from autoresearch.config import Config
from autoresearch.loop import Loop
from autoresearch.protocol import ExperimentRecorded
from autoresearch.repo import Repo

PACKAGE = Path(__file__).resolve().parents[2] / "server" / "autoresearch"
# The one module that runs git, and the process-control pair (the shepherd is its child side).
GIT_MODULE = "repo.py"
PROCESS_MODULES = {"procs.py", "shepherd.py"}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _imports(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_only_repo_py_runs_git_and_only_procs_py_starts_processes() -> None:
    """A source check (the guard against a raw call creeping back); the behaviour is below."""
    offenders: list[str] = []
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = _imports(tree)
        if rel != GIT_MODULE and "git" in imported:
            offenders.append(f"{rel} imports GitPython")
        if rel not in PROCESS_MODULES and "subprocess" in imported:
            offenders.append(f"{rel} imports subprocess")
        for node in ast.walk(tree):
            # `<something>.git.<command>(...)`: GitPython's command runner reached from outside.
            if (
                rel != GIT_MODULE
                and isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "git"
            ):
                offenders.append(f"{rel}:{node.lineno} calls .git.{node.attr}")
            # ["git", ...] handed to anything: a git process started by hand.
            if (
                rel != GIT_MODULE
                and isinstance(node, ast.List)
                and node.elts
                and isinstance(node.elts[0], ast.Constant)
                and node.elts[0].value == "git"
            ):
                offenders.append(f"{rel}:{node.lineno} builds a git command line")
    assert offenders == []


WRAPPER = """#!/bin/sh
printf '%s\\n' "$*" >> "$GIT_COUNT_LOG"
exec {git} "$@"
"""


def test_an_experiment_starts_at_most_five_git_processes(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every git process the loop starts goes through a `git` first on PATH that logs it. A
    keep costs a status before the edit and one after it, and the commit; a discard also the
    status before HEAD moves back and the reset. (Before: 6 to 7, with a `git diff` for the
    counts, an `ls-files` for untracked files, and a status and a reset after a keep.)"""
    real = next(
        Path(d) / "git" for d in os.environ["PATH"].split(os.pathsep) if (Path(d) / "git").is_file()
    )
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "git").write_text(WRAPPER.format(git=real))
    (bin_dir / "git").chmod(0o755)
    log = tmp_path / "git.log"
    log.touch()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("GIT_COUNT_LOG", str(log))
    values = ["0.4", "0.9", "0.35", "0.8"]  # before the notes' refresh after every fifth
    marks: list[int] = []

    def emit(event: object) -> None:
        if isinstance(event, ExperimentRecorded):
            marks.append(len(log.read_text().splitlines()))

    config = make_config(agent__kind="manual", decision__noise_repeats=0)
    proposer = ScriptedProposer([set_lr(v) for v in values])
    Loop(repo, config, proposer, emit=emit, limit=len(values)).run()
    lines = log.read_text().splitlines()
    assert len(marks) == len(values) + 1  # the baseline and every experiment recorded
    per = [b - a for a, b in itertools.pairwise(marks)]
    steps = [line.split()[0] for line in lines[marks[0] : marks[-1]]]
    assert max(per) <= 5 and statistics.mean(per) <= 4, (per, steps)
    assert set(steps) <= {"status", "commit", "reset"}, steps


def test_diff_counts_from_the_commit_summary_match_git_diff(repo: Path) -> None:
    (repo / "train.py").write_text("LR = 0.1\n")  # lines removed and added
    (repo / "data.bin").write_bytes(b"\0\1\2" * 100)  # binary: a file, no lines
    git(repo, "mv", "evaluate.py", "evaluation.py")  # a rename: one file
    (repo / "new.txt").write_text("a\nb\nc\n")
    r = Repo(repo)
    parent = r.head()
    sha = r.commit("several kinds of change", ["train.py", "data.bin", "new.txt"])
    summarised = r.diff_stats(parent, sha)
    r.close()
    fresh = Repo(repo)  # no summary in hand: asks `git diff --numstat`
    assert fresh.diff_stats(parent, sha) == summarised
    fresh.close()
    assert summarised.files >= 3 and summarised.additions >= 4 and summarised.deletions >= 1


def test_an_extraction_command_over_its_timeout_is_ended_with_its_children(
    tmp_path: Path,
) -> None:
    """A child left holding the output pipe (`sleep &`) must neither keep the loop waiting nor
    outlive the command."""
    tag = f"120.{time.time_ns() % 10**6:06d}"  # a unique sleep, at most two minutes
    command = f"sleep {tag} & sleep {tag}; echo 1"
    started = time.monotonic()
    with pytest.raises(extract.ExtractionError, match="ran over 1s"):
        extract.by_command(command, tmp_path, timeout=1.0)
    assert time.monotonic() - started < 60  # not the children's whole sleep

    def left() -> list[psutil.Process]:
        return [
            p
            for p in psutil.process_iter(["cmdline", "status"])
            if p.info["cmdline"] == ["sleep", tag] and p.info["status"] != psutil.STATUS_ZOMBIE
        ]

    deadline = time.monotonic() + 30
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    stray = left()
    for proc in stray:  # a failing run leaves nothing behind either
        proc.kill()
    assert stray == []


def test_the_demo_repository_is_made_through_repo_py(tmp_path: Path) -> None:
    from autoresearch import repo as repo_module

    (tmp_path / "a.txt").write_text("a\n")
    repo_module.create(tmp_path, "demo", "demo@localhost", "demo example")
    assert git(tmp_path, "log", "--format=%an %s") == "demo demo example"
    assert git(tmp_path, "branch", "--show-current") == "main"
    assert repo_module.tracked_files(tmp_path) == ["a.txt"]


# The baseline's run (a keep) also edits the file in scope, as a person would meanwhile.
PERSON_RUN = """\
import pathlib
done = pathlib.Path(".git/person-edited")
if not done.exists():
    done.write_text("")
    train = pathlib.Path("train.py")
    train.write_text(train.read_text() + "# mine\\n")
print("score: 0.01")
"""


def _person_runs(repo: Path, script: str) -> Config:
    """A run command that edits train.py as a person would meanwhile (committed beforehand)."""
    (repo / "person_run.py").write_text(script)
    git(repo, "add", "person_run.py")
    git(repo, "commit", "-qm", "the run")
    return make_config(
        agent__kind="manual",
        decision__noise_repeats=0,
        run__command=f"{sys.executable} person_run.py",
    )


def test_a_persons_edit_during_a_kept_run_is_stashed_not_committed(repo: Path) -> None:
    """A keep moves no HEAD, so nothing is set aside at its decision: the next edit step's
    status finds the in-scope edit and stashes it before the edit, out of that commit."""
    config = _person_runs(repo, PERSON_RUN)
    Loop(repo, config, ScriptedProposer([set_lr("0.4")]), limit=1).run()
    stashes = git(repo, "stash", "list").splitlines()
    assert len(stashes) == 1 and "your edit of train.py before #1" in stashes[0], stashes
    assert "+# mine" in git(repo, "stash", "show", "-p", "stash@{0}")
    ref = git(repo, "for-each-ref", "--format=%(refname)", "refs/autoresearch/").split()[-1]
    assert ref.endswith("/1")
    committed = git(repo, "show", "--format=", ref, "--", "train.py")
    assert "LR = 0.4" in committed and "# mine" not in committed


# Experiment #1's run (the second run) edits the file in scope, as a person would meanwhile.
PERSON_SECOND_RUN = """\
import pathlib, runpy
runs = pathlib.Path(".git/person-runs")
n = int(runs.read_text()) if runs.exists() else 0
runs.write_text(str(n + 1))
if n == 1:
    train = pathlib.Path("train.py")
    train.write_text(train.read_text() + "# mine\\n")
runpy.run_path("train.py")
"""


def test_a_persons_edit_during_the_last_kept_run_stays_in_the_tree(repo: Path) -> None:
    """The loop stops after a keep (no next edit step to stash it): the person's in-scope
    edit is neither committed, reset nor stashed; it is in the tree as they left it."""
    config = _person_runs(repo, PERSON_SECOND_RUN)
    history = Loop(repo, config, ScriptedProposer([set_lr("0.35")]), limit=1).run()
    assert [e.status for e in history] == ["keep", "keep"], [e.reason for e in history]
    assert git(repo, "stash", "list") == ""
    text = (repo / "train.py").read_text()
    assert "LR = 0.35" in text and text.endswith("# mine\n")
    assert "# mine" not in git(repo, "show", "HEAD:train.py")
    assert git(repo, "status", "--porcelain", "--", "train.py") == "M train.py"


def test_a_changed_file_with_a_space_in_its_name_is_named_whole(repo: Path) -> None:
    """The description of an edit that came without one names its files: a space in a name
    split it in two ("edit my, model.py"), and git quoted names it thinks unusual."""
    (repo / "my model.py").write_text("W = 1\n")
    (repo / "naïve.py").write_text("W = 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "files")
    r = Repo(repo)
    parent = r.head()
    (repo / "my model.py").write_text("W = 2\n")
    (repo / "naïve.py").write_text("W = 2\n")
    files, stat = r.changed_since(parent)
    r.close()
    assert files == ["my model.py", "naïve.py"] and stat.startswith("2 files changed")


def _edit_and_a_persons_saves(root: Path) -> str:
    """The edit step's change, and saves that land while it runs (a person's, or the agent's
    strays: the loop cannot tell them apart): NOTES.md edited, todo.txt made, evaluate.py
    (off limits) edited."""
    set_lr("0.4")(root)
    (root / "NOTES.md").write_text("my notes, second draft\n")
    (root / "todo.txt").write_text("write the paper\n")
    with open(root / "evaluate.py", "a") as f:
        f.write("# my fix\n")
    return "LR -> 0.4"


def test_what_is_reverted_after_an_edit_step_is_kept_under_a_ref(repo: Path) -> None:
    """Out-of-scope changes made while the edit step ran are reverted (the run uses only the
    experiment's commit), but never thrown away: a person may have made them. They are kept
    under refs/autoresearch/<tag>/<n>-reverted, and the event says how to bring them back."""
    (repo / "NOTES.md").write_text("my notes\n")
    git(repo, "add", "NOTES.md")
    git(repo, "commit", "-qm", "notes")
    config = make_config(agent__kind="manual", decision__noise_repeats=0)
    history = Loop(repo, config, ScriptedProposer([_edit_and_a_persons_saves]), limit=1).run()
    first = history[1]
    assert (repo / "NOTES.md").read_text() == "my notes\n"  # reverted in the tree
    assert not (repo / "todo.txt").exists()
    assert "# my fix" not in (repo / "evaluate.py").read_text()
    ref = f"refs/autoresearch/{first.tag}/1-reverted"
    kept = next(e for e in first.events if "is kept in" in e)
    assert ref in kept and f"git checkout {ref} -- " in kept, first.events
    assert git(repo, "show", f"{ref}:NOTES.md") == "my notes, second draft"
    assert git(repo, "show", f"{ref}:todo.txt") == "write the paper"
    assert git(repo, "show", f"{ref}:evaluate.py").endswith("# my fix")
    assert "LR = 0.4" not in git(repo, "show", f"{ref}:train.py")  # only what was reverted
    assert git(repo, "stash", "list") == ""  # the person's stash is theirs alone
    assert not list((repo / ".git").glob("autoresearch-save-*"))  # its private index is gone
    git(repo, "checkout", ref, "--", "NOTES.md")  # as the event says: it comes back
    assert (repo / "NOTES.md").read_text() == "my notes, second draft\n"


def test_an_edit_git_cannot_keep_is_left_in_place_not_thrown_away(repo: Path) -> None:
    """When git cannot save them (here its private index path is taken by a folder), the
    out-of-scope changes stay as they are, said so; an off-limits file is put back all the
    same (the next run must not use an edited one)."""
    (repo / "NOTES.md").write_text("my notes\n")
    git(repo, "add", "NOTES.md")
    git(repo, "commit", "-qm", "notes")
    (repo / ".git" / f"autoresearch-save-{os.getpid()}.index").mkdir()
    config = make_config(agent__kind="manual", decision__noise_repeats=0)
    history = Loop(repo, config, ScriptedProposer([_edit_and_a_persons_saves]), limit=1).run()
    first = history[1]
    assert (repo / "NOTES.md").read_text() == "my notes, second draft\n"
    assert (repo / "todo.txt").read_text() == "write the paper\n"
    assert "# my fix" not in (repo / "evaluate.py").read_text()
    assert any(
        e.startswith("NOTES.md is outside the scope: left as the edit made it")
        for e in first.events
    ), first.events
    assert not any("is kept in" in e for e in first.events)
