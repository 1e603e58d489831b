"""Hostile repositories and other tools' files: every input stays inside the repository, every
table another tool wrote is read whole and never broken. Real repositories, the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import git, make_config, make_repo
from tables import ELEVEN, baseline_keep_revert, eleven_columns

from autoresearch import config as cfg
from autoresearch import notes
from autoresearch.agents.base import AgentUnavailable, EditContext
from autoresearch.agents.sweep import SweepProposer

CLI = [sys.executable, "-m", "autoresearch"]
BPB_TRAIN = 'LR = 0.5\nDEPTH = 4\nprint(f"val_bpb: {abs(LR - 0.3) + DEPTH * 0.01:.6f}")\n'
BPB = {"name": "val_bpb", "direction": "lower", "pattern": r"^val_bpb:\s*(\S+)"}
# A config as a user writes it, with room for one more scope pattern.
TOML = f"""\
[metric]
name = "score"
direction = "lower"
pattern = '^score:\\s*(\\S+)'

[run]
command = "{sys.executable} train.py"

[scope]
files = ["train.py"{{files}}]
off_limits = ["evaluate.py"{{off_limits}}]
"""


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL
    )


def commit_config(root: Path, config: cfg.Config | str) -> None:
    text = config if isinstance(config, str) else cfg.dumps(config)
    (root / cfg.CONFIG_FILE).write_text(text)
    git(root, "add", cfg.CONFIG_FILE)
    git(root, "commit", "-qm", "config")


def untouched(root: Path, head: str) -> None:
    """A refused start writes nothing: no row, no session branch, no new commit."""
    assert not (root / "results.tsv").exists()
    assert git(root, "branch", "--list", "autoresearch/*") == ""
    assert git(root, "rev-parse", "HEAD") == head and git(root, "status", "--porcelain") == ""


# ---- 3. no edit step writes through a symbolic link --------------------------------------------


def test_an_in_scope_link_out_of_the_repository_is_refused(tmp_path: Path) -> None:
    decoy = tmp_path / "decoy.py"
    decoy.write_text("LR = 0.5\n")
    root = make_repo(tmp_path / "repo")
    os.symlink("../decoy.py", root / "ext.py")
    git(root, "add", "ext.py")
    git(root, "commit", "-qm", "a link to a file outside")
    commit_config(root, make_config(scope__files=["ext.py", "train.py"]))
    head = git(root, "rev-parse", "HEAD")
    done = cli("run", "--dir", str(root), "--loop", "1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "ext.py is a symbolic link to ../decoy.py (outside the repository)" in done.stderr
    assert "Take ext.py out of scope.files" in done.stderr
    assert decoy.read_text() == "LR = 0.5\n"
    untouched(root, head)


def test_files_under_a_linked_folder_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "model.py").write_text("WIDTH = 512\n")
    root = make_repo(tmp_path / "repo")
    os.symlink("../outside", root / "lib")
    git(root, "add", "lib")
    git(root, "commit", "-qm", "a linked folder")
    commit_config(root, make_config(scope__files=["lib/*.py", "train.py"]))
    head = git(root, "rev-parse", "HEAD")
    done = cli("run", "--dir", str(root), "--loop", "1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "lib/model.py lies under lib, a link to ../outside" in done.stderr
    assert (outside / "model.py").read_text() == "WIDTH = 512\n"
    untouched(root, head)


def test_the_sweep_never_writes_through_a_link_made_after_preflight(tmp_path: Path) -> None:
    """The write-side guard: a link that appears once the session runs is refused too."""
    decoy = tmp_path / "decoy.py"
    decoy.write_text("LR = 0.5\n")
    root = make_repo(tmp_path / "repo", {"train.py": "print('score: 1')\n"})
    os.symlink("../decoy.py", root / "ext.py")
    config = make_config(scope__files=["ext.py"])
    sweep = SweepProposer(config, root, ["ext.py"])
    ctx = EditContext(root=root, number=1, config=config, history=[], best=None)
    with pytest.raises(AgentUnavailable, match="Refused to edit ext.py: .*symbolic link"):
        sweep.propose(ctx, threading.Event())
    assert decoy.read_text() == "LR = 0.5\n"


# ---- 7. scope patterns stay inside the repository ----------------------------------------------


@pytest.mark.parametrize(
    ("key", "pattern", "problem"),
    [
        ("files", "/etc/*", "is absolute"),
        ("files", "../*", "climbs out of the repository with '..'"),
        ("off_limits", "/etc/passwd", "is absolute"),
        ("off_limits", "../secrets/*", "climbs out of the repository with '..'"),
    ],
)
def test_scope_patterns_outside_the_repository_are_refused(
    repo: Path, key: str, pattern: str, problem: str
) -> None:
    extra = {"files": "", "off_limits": "", key: f', "{pattern}"'}
    commit_config(repo, TOML.format(**extra))
    head = git(repo, "rev-parse", "HEAD")
    done = cli("run", "--dir", str(repo), "--loop", "1")
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"scope.{key}: '{pattern}' {problem}" in done.stderr
    assert "relative to the repository root" in done.stderr and "e.g. '" in done.stderr
    untouched(repo, head)


# ---- 8. other tools' tables ------------------------------------------------------------------


def test_resuming_on_an_eleven_column_table_appends_in_its_layout(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": BPB_TRAIN})
    commit_config(root, make_config(metric=BPB))
    git(root, "checkout", "-q", "-b", "autoresearch/mar8")
    table = eleven_columns(git(root, "rev-parse", "--short=7", "HEAD"))
    (root / "results.tsv").write_text(table)
    for _ in range(2):  # the second run reads what the first appended
        done = cli("run", "--dir", str(root), "--loop", "1")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "HEAD" not in done.stdout, done.stdout  # nothing was interrupted or moved
    lines = (root / "results.tsv").read_text().splitlines()
    assert lines[: table.count("\n")] == table.splitlines()  # the other tool's rows untouched
    assert len(lines) == table.count("\n") + 2
    for line in lines[-2:]:
        cells = dict(zip(ELEVEN, line.split("\t"), strict=True))
        assert cells["status"] in ("keep", "discard") and len(cells["commit"]) == 7
        assert float(cells["val_bpb"]) > 0 and cells["description"]
        assert cells["timestamp"] == cells["params_m"] == cells["notes"] == ""
    listing = cli("results", "--dir", str(root), "--json")
    assert len(listing.stdout.splitlines()) == len(lines) - 1


def test_resuming_another_tools_table_on_its_last_keep_moves_nothing(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo", {"train.py": BPB_TRAIN})
    commit_config(root, make_config(metric=BPB))
    git(root, "checkout", "-q", "-b", "autoresearch/mar8")
    short = git(root, "rev-parse", "--short=7", "HEAD")  # such tables keep 7-character shas
    header = "commit\tval_bpb\tmemory_gb\tstatus\tdescription\n"
    (root / "results.tsv").write_text(header + f"{short}\t1.020000\t0.0\tkeep\tbaseline\n")
    done = cli("run", "--dir", str(root), "--loop", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "HEAD" not in done.stdout and "interrupted" not in done.stdout, done.stdout
    # Its .gitignore did not name the loop's files: they are ignored now, and no commit says so.
    assert "added to .git/info/exclude" in done.stdout, done.stdout
    assert git(root, "status", "--porcelain") == ""


def test_cli_reads_another_tools_table_as_the_observer_does(tmp_path: Path) -> None:
    root = make_repo(tmp_path / "repo")
    commit_config(root, make_config(metric=BPB))
    git(root, "checkout", "-q", "-b", "autoresearch/mar8")
    table = baseline_keep_revert().splitlines()
    table.insert(40, "7c6b5a4\t0.99\t43.9\tMAYBE\ttried something")  # line 41 of the file
    (root / "results.tsv").write_text("\n".join(table) + "\n")

    listing = cli("results", "--dir", str(root))
    assert listing.returncode == 0, listing.stderr
    assert listing.stdout.startswith("session mar8: 66 experiments")
    assert "results.tsv line 41 is left out: status 'MAYBE'" in listing.stderr
    rows = [
        json.loads(line)
        for line in cli("results", "--dir", str(root), "--json").stdout.splitlines()
    ]
    assert len(rows) == 66 and rows[0]["status"] == "keep" and rows[0]["metric"] == 0.998
    # The rows after the unreadable one keep their numbers (#39 is the left-out row): they are
    # not renumbered, so a diff or a log asked for by number is the right one.
    numbers = [r["number"] for r in rows]
    assert 39 not in numbers and numbers[-1] == 66 and numbers == sorted(numbers)
    crashed = [r for r in rows if (r["number"] - (r["number"] > 39)) % 7 == 0 and r["number"]]
    assert crashed and all(r.get("metric") is None for r in crashed)

    status = cli("status", "--dir", str(root), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    session = data["sessions"][0]
    assert session["tag"] == "mar8" and session["total"] == 66
    assert session["best"] == min(r["metric"] for r in rows if r["status"] == "keep")
    assert session["counts"]["keep"] == sum(r["status"] == "keep" for r in rows[1:])
    assert data["warnings"][0].startswith("results.tsv line 41")
    text = cli("status", "--dir", str(root))
    assert "autoresearch/mar8: 66 experiments" in text.stdout
    assert "line 41 is left out" in text.stderr


# ---- 9. autoresearch.md: the seed's sections ---------------------------------------------------


def test_notes_have_the_seeds_sections_and_are_refreshed_when_a_loop_ends(repo: Path) -> None:
    commit_config(repo, make_config(run__guard=f"{sys.executable} -c 'pass'"))
    done = cli("run", "--dir", str(repo), "--loop", "2")
    assert done.returncode == 0, done.stdout + done.stderr
    text = git(repo, "show", "HEAD:autoresearch.md")
    found = [line[3:] for line in text.splitlines() if line.startswith("## ")]
    assert found == [
        "Objective",
        "Metric",
        "Command",
        "Metric Extraction",
        "Comparison Protocol",
        "Files in Scope",
        "Off Limits",
        "Constraints",
        "Guard",
        "What's Been Tried",
    ]
    assert found == list(notes.SECTIONS)
    tried = text.split("## What's Been Tried\n", 1)[1]
    assert "- #0 keep" in tried and "- #1 " in tried and "- #2 " in tried
    assert r"Regex `^score:\s*(\S+)` on run.log" in text and "-c 'pass'` must pass" in text
    assert git(repo, "status", "--porcelain") == ""
