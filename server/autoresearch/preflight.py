"""Checks before a session starts, each failure worded as the problem and its fix."""

from __future__ import annotations

import os
import shlex
import shutil
import time
from pathlib import Path

from . import config as cfg
from .config import Config
from .confine import check_state_paths, why_not
from .repo import Repo, RepoError
from .scope import LOOP_FILES, matches, on_disk

# Files the loop writes and commits itself: a kill between write and commit leaves them dirty.
LOOP_WRITTEN = ("autoresearch.toml", "autoresearch.md")
SHELL_WORDS = {"cd", "export", "source", ".", "env", "time", "exec", "nice", "timeout", "set"}


class PreflightError(RuntimeError):
    """The session cannot start; the message names the problem and the fix."""


def check_has_commits(repo: Repo) -> None:
    if not repo.has_commits():
        raise PreflightError(
            "The repository has no commits. Commit your files first (git add -A && git commit)."
        )


def check_repo(repo: Repo) -> None:
    check_has_commits(repo)
    if repo.branch() is None:
        raise PreflightError(
            "HEAD is detached. Check out a branch first"
            " (git switch -c my-branch, or git switch main)."
        )
    state = repo.in_progress()
    if state:
        raise PreflightError(
            f"A {state} is in progress. Finish it or abort it (git {state} --abort) first."
        )
    wait_for_index(repo)
    dirty = [
        c.path
        for c in repo.status()
        if not c.untracked and not matches(c.path, [*LOOP_FILES, *LOOP_WRITTEN])
    ]
    if dirty:
        shown = ", ".join(dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise PreflightError(
            f"The working tree has uncommitted changes ({shown}). Commit or stash them first:"
            " every experiment starts from a committed tree, and a revert must not mix your"
            " edits with the loop's."
        )


def wait_for_index(repo: Repo, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while repo.index_locked():
        if time.monotonic() > deadline:
            raise PreflightError(
                f"{repo.root / '.git' / 'index.lock'} exists: another git process is running or"
                " crashed. Wait for it, or delete that file if no git command is running."
            )
        time.sleep(0.1)


def check_start(root: Path, config: Config | None) -> None:
    """What a start request can check before it writes anything (the config it would save,
    the lock, .autoresearch/): a refused start must leave the folder as it was."""
    repo = Repo(root)  # RepoError: not a repository, nothing written there
    try:
        check_state_paths(root)
        check_has_commits(repo)
        tracked = repo.ls_files()
    finally:
        repo.close()
    if config is None:
        config = cfg.load(root)  # validated as it is read
    else:
        cfg.validate(config)
    check_settings(root, config, tracked)


def check_config(root: Path, config: Config, tracked: list[str]) -> None:
    check_settings(root, config, tracked)
    check_writable(root)


def check_settings(root: Path, config: Config, tracked: list[str]) -> None:
    """The commands and the scope against the tree; reads only."""
    check_command(root, config.run.command, "run.command")
    if config.run.guard:
        check_command(root, config.run.guard, "run.guard")
    present = set(tracked) | on_disk(root, config.scope.files)
    # Links first: a file under a linked folder is never tracked, and must be named as a link.
    for path in sorted(present):
        reason = why_not(root, path) if matches(path, config.scope.files) else None
        if reason:
            raise PreflightError(reason)
    committed = set(tracked)
    for glob in config.scope.files:
        if not any(matches(path, [glob]) for path in committed) and any(
            matches(path, [glob]) for path in present
        ):
            raise PreflightError(
                f"scope.files entry {glob!r} matches only files git does not track. Commit them"
                " first (git add, git commit): the loop compares every edit with the last commit."
            )
        if not any(matches(path, [glob]) for path in present):
            # The dialect's likeliest surprise: `*` stays in its folder, the files lie deeper.
            parent, _, name = glob.rstrip("/").rpartition("/")
            deeper = f"{parent}/**/{name}" if parent else f"**/{name}"
            found = "*" in glob and any(matches(path, [deeper]) for path in present)
            hint = (
                f" (`*` stays inside one folder; {deeper!r} includes subfolders)" if found else ""
            )
            raise PreflightError(
                f"scope.files entry {glob!r} matches no file in {root}{hint}. Fix the glob or"
                " create the file."
            )
    for path in present:
        if matches(path, config.scope.files) and matches(path, config.scope.off_limits):
            raise PreflightError(
                f"{path} is matched by both scope.files and scope.off_limits. Narrow one of them."
            )


def check_command(root: Path, command: str, key: str) -> None:
    """The program a command starts must exist, so a typo fails now, not as a crash later."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise PreflightError(f"{key} is not a valid shell command ({exc}): {command}") from None
    words = [w for w in words if "=" not in w.split("/")[0] or w.startswith(("./", "/"))]
    if not words or words[0] in SHELL_WORDS or any(c in command for c in "|;&()`$"):
        return  # a compound shell command: the shell itself reports what is missing
    program = words[0]
    if "/" in program:
        target = (root / program).resolve() if not os.path.isabs(program) else Path(program)
        if not target.exists():
            raise PreflightError(f"{key}: {program} does not exist. Fix the path in {key}.")
        return
    if shutil.which(program) is None:
        raise PreflightError(
            f"{key}: command {program!r} was not found on PATH. Install it or fix {key}"
            f" (it is: {command})."
        )


def check_writable(root: Path) -> None:
    probe = root / ".autoresearch" / ".write-test"
    try:
        probe.parent.mkdir(exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise PreflightError(
            f"Cannot write to {probe.parent} ({exc.strerror}). Make the repository writable."
        ) from None
    results = root / "results.tsv"
    if results.exists() and not os.access(results, os.W_OK):
        raise PreflightError(f"{results} is read-only. Make it writable (chmod u+w results.tsv).")


__all__ = ["PreflightError", "RepoError", "check_config", "check_repo"]
