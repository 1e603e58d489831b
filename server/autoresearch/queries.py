"""Read-only answers over the repository and the records: pages, changes, files, log tails.

Pure functions of their arguments (a Repo, an experiment list, a path), shared by the loop
mode and the observer mode, so both answer the same way.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path

from .experiment import Experiment
from .protocol import ChangesResult, FileAtResult, FileChange, LogResult
from .repo import Repo
from .revision import RevisionError
from .revision import commit as commit_of
from .triage import read_tail

# `git hash-object -t tree /dev/null`: what a root commit is compared with.
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
# A log request may ask for less, never for more: one answer must stay one small message.
MAX_LOG_BYTES = 4 * 1024 * 1024
# fileAt answers with the whole file: a bigger one is refused before git reads it.
MAX_FILE_BYTES = 16 * 1024 * 1024


class QueryError(ValueError):
    """A request names something that is not there; the message says what and what to do."""


def page(
    items: Sequence[Experiment], offset: int, limit: int, newest_first: bool
) -> list[Experiment]:
    """One page, read as one slice: O(limit), however many experiments there are (a session
    read from the records decodes only these)."""
    total = len(items)
    if newest_first:
        first = total - 1 - offset
        last = max(first - limit, -1)
        return list(reversed(items[last + 1 : first + 1])) if first >= 0 else []
    return list(items[offset : offset + limit])


def changes(repo: Repo, commit: str, exp: Experiment | None) -> ChangesResult:
    """The files one experiment changed, parent -> commit, with line counts. `commit` may come
    from a record (results.tsv of a cloned repository): it is checked like a request's."""
    try:
        sha = commit_of(repo, commit)
    except RevisionError as exc:
        raise QueryError(f"The recorded commit is unusable: {exc}") from None
    if sha is None:
        raise QueryError(
            f"commit {commit} is not in this repository (garbage-collected, or recorded elsewhere)."
        )
    parent = exp.parent if exp and exp.parent else ""
    if parent and parent == sha:
        # The baseline is recorded against itself (nothing edited): show what its commit did.
        parent = ""
    parent = _recorded(repo, parent) or repo.parent(sha) or EMPTY_TREE
    files = [
        FileChange(
            path=f.path,
            status=f.status,  # type: ignore[arg-type]
            additions=f.additions,
            deletions=f.deletions,
            old_path=f.old_path,
            binary=f.binary,
        )
        for f in repo.diff_files(parent, sha)
    ]
    return ChangesResult(
        number=exp.number if exp else None,
        commit=sha,
        parent=parent,
        files=files,
        status=exp.status if exp else "",
        metric=exp.metric if exp else None,
    )


def file_at(repo: Repo, commit: str, path: str) -> FileAtResult:
    """A file's content at a revision: text when it is UTF-8, else base64."""
    if commit == EMPTY_TREE:
        return FileAtResult(exists=False)
    sha = commit_of(repo, commit)
    if sha is None:
        raise QueryError(f"commit {commit} is not in this repository.")
    rel = path.replace("\\", "/").lstrip("/")
    if not rel or any(part == ".." for part in rel.split("/")):
        raise QueryError(f"path {path!r} must be relative to the repository root.")
    data = repo.file_at(sha, rel, MAX_FILE_BYTES)
    if data is None:
        return FileAtResult(exists=False)
    if b"\0" not in data:
        try:
            return FileAtResult(exists=True, content=data.decode("utf-8"))
        except UnicodeDecodeError:
            pass
    return FileAtResult(exists=True, content=base64.b64encode(data).decode(), encoding="base64")


def _recorded(repo: Repo, name: str) -> str | None:
    """A recorded parent, when it is a usable commit name."""
    try:
        return commit_of(repo, name) if name else None
    except RevisionError:
        return None


def tail(path: Path, max_bytes: int, shown: str) -> LogResult:
    """The last `max_bytes` of a log (which may be gigabytes), read from its end."""
    data, size, start = read_tail(path, max(0, min(max_bytes, MAX_LOG_BYTES)))
    text = data.decode("utf-8", errors="replace")
    if start > 0 and text[:1] == "\ufffd":
        text = text.lstrip("\ufffd")  # the cut fell inside a multi-byte character
    return LogResult(path=shown, text=text, size=size, truncated=start > 0)
