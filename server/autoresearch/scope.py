"""Which files the edit step may touch, and putting the repository back when it strays.

`enforce()` runs after every edit, before the commit: it restores the expected branch and HEAD,
undoes changes outside scope or to off-limits files, and says what it did in plain words.
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path

import msgspec

from .repo import Repo

# Files the loop itself writes; never the edit step's business, never reverted by it.
LOOP_FILES = ("results.tsv", "run.log", ".autoresearch/")


def matches(path: str, globs: list[str]) -> bool:
    for glob in globs:
        g = glob.rstrip("/")
        if path == g or path.startswith(g + "/") or fnmatch.fnmatch(path, glob):
            return True
    return False


def expand(root: Path, files: list[str], globs: list[str]) -> list[str]:
    """The tracked files (repo-relative) matching any glob."""
    return [f for f in files if matches(f, globs)]


class Enforcement(msgspec.Struct):
    # Paths kept for the commit.
    allowed: list[str]
    # Human-readable events, recorded with the experiment and shown in progress output.
    events: list[str]
    # An off-limits file was touched: the attempt is flagged.
    off_limits_touched: bool = False


def enforce(
    repo: Repo,
    branch: str,
    parent: str,
    scope: list[str],
    off_limits: list[str],
    untracked_before: set[str],
) -> Enforcement:
    events: list[str] = []
    if repo.in_progress():
        events.append(f"the edit left a {repo.in_progress()} in progress: aborted")
        repo.abort_in_progress()
    if repo.branch() != branch:
        events.append(
            f"the edit switched to {repo.branch() or 'a detached HEAD'}: back on {branch}"
        )
        repo.git.symbolic_ref("HEAD", f"refs/heads/{branch}")
    if repo.head() != parent:
        events.append("the edit committed or moved HEAD: its changes are kept uncommitted")
        repo.git.reset("-q", "--soft", parent)
    repo.git.reset("-q")  # unstage: the loop decides what is committed
    allowed: list[str] = []
    touched_off = False
    restore: list[str] = []
    remove: list[str] = []
    for change in repo.status():
        path = change.path
        if matches(path, list(LOOP_FILES)):
            continue
        if change.untracked and path in untracked_before:
            continue  # the user's own untracked file, there before the edit
        if matches(path, off_limits):
            touched_off = True
            events.append(f"off-limits file {path} was edited: reverted")
        elif matches(path, scope) and (change.old_path is None or matches(change.old_path, scope)):
            allowed.append(path)
            continue
        else:
            events.append(f"{path} is outside the scope: reverted")
        if change.untracked:
            remove.append(path)
        else:
            restore.append(path)
            if change.old_path:
                restore.append(change.old_path)
    _restore(repo, restore)
    repo.remove_untracked(remove)
    return Enforcement(allowed=allowed, events=events, off_limits_touched=touched_off)


def _restore(repo: Repo, paths: list[str]) -> None:
    if not paths:
        return
    tracked = set(repo.ls_files())
    existing = [p for p in paths if p in tracked]
    new = [p for p in paths if p not in tracked]
    repo.restore(existing)
    for rel in new:  # staged-then-unstaged additions are untracked now
        target = repo.root / rel
        if target.is_file():
            target.unlink()


def checksums(root: Path, paths: list[str]) -> dict[str, str]:
    """sha256 of each off-limits file, to notice an evaluator changed behind the loop's back."""
    sums = {}
    for rel in paths:
        target = root / rel
        if target.is_file():
            sums[rel] = hashlib.sha256(target.read_bytes()).hexdigest()
    return sums
