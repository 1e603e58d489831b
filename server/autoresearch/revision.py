"""Which commit names a request (or a record read from disk) may carry, and how they are resolved.

A name reaches git only as one of: a hex object name, HEAD, an attempt ref
`refs/autoresearch/<tag>/<n>` (with its `-crashN`/`-reworkN` label), or a branch name that git's
own `check-ref-format` accepts. git resolves it (`rev-parse --verify`); the daemon never opens a
path under .git/ for it, so `refs/heads/../../dev/zero` or a FIFO outside the repository is
refused before anything is read.
"""

from __future__ import annotations

import re

from .repo import Repo, valid_branch_name

# The session-tag character set (a tag names a branch, refs and log files).
TAG_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
TAG = re.compile(rf"{TAG_PATTERN}")
HEX = re.compile(r"[0-9a-fA-F]{4,40}|[0-9a-fA-F]{64}")
ATTEMPT = re.compile(rf"refs/autoresearch/{TAG_PATTERN}/\d+(?:-crash\d+|-rework\d+)?")
MAX_NAME = 255
ACCEPTED = (
    "a commit sha (4 to 40 hex digits), HEAD, refs/autoresearch/<tag>/<n> (optionally"
    " -crashN or -reworkN) or a branch name"
)


class RevisionError(ValueError):
    """A name that is not a commit name this daemon reads; the message says what is."""


def check(name: str) -> str:
    """The name to ask git for; RevisionError when `name` is none of the accepted forms."""
    if 0 < len(name) <= MAX_NAME and (
        HEX.fullmatch(name) or name == "HEAD" or ATTEMPT.fullmatch(name)
    ):
        return name
    branch = name.removeprefix("refs/heads/")
    if 0 < len(name) <= MAX_NAME and _branch_name(branch):
        return f"refs/heads/{branch}"
    shown = name if len(name) <= 80 else f"{name[:80]}... ({len(name)} characters)"
    raise RevisionError(f"{shown!r} is not a commit name: give {ACCEPTED}.")


def commit(repo: Repo, name: str) -> str | None:
    """The full sha of the commit `name` names, or None when there is none; asked of git."""
    return repo.commit_of(check(name))


def _branch_name(branch: str) -> bool:
    # `--branch` would expand @{-N}; the plain form only checks the syntax, as for a new ref.
    if not branch or branch.startswith(("-", "refs/")) or "\0" in branch or "@{" in branch:
        return False
    return valid_branch_name(branch)
