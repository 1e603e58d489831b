"""Which files the edit step may touch, and putting the repository back when it strays.

`enforce()` runs after every edit, before the commit: it restores the expected branch and HEAD,
brings back stashed changes, undoes changes outside scope or to off-limits files, and says what
it did in plain words. `Sentinel` checksums the off-limits files, so a change git does not show
(an `--assume-unchanged` file, a background process) still invalidates the run.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import shlex
from collections.abc import Callable, Iterable
from pathlib import Path

import msgspec
import pathspec

from .config import Config
from .confine import link_in_path, put_back, read_own
from .repo import EDITOR_FILES, GitError, Repo, RepoError

# Files the loop itself writes; never the edit step's business, never reverted by it.
LOOP_FILES = ("results.tsv", "run.log", ".autoresearch/", *EDITOR_FILES)
# A file the edit step makes this large is refused: git would keep it in every attempt forever.
MAX_FILE_BYTES = 50 * 1024 * 1024

# ---- the one pattern dialect ----------------------------------------------------------------
# scope.files and scope.off_limits are gitignore patterns (the pathspec library) anchored at the
# repository root: `*` and `?` stay inside one folder, `**` spans folders (`**/*.py` includes
# train.py at the root), `[abc]` is a set, `\` escapes. A pattern that matches a folder covers
# everything under it (`data`, `data/`, `data/*`). Written relative to the root (config.py
# refuses absolute and `..` patterns), so `!` and `#` at the start are plain characters.
# The daemon expands them into concrete paths; the agent's {files}, the editor's locks and
# badges receive those paths and match nothing themselves.


@functools.lru_cache(maxsize=64)
def _spec(patterns: tuple[str, ...]) -> pathspec.PathSpec:
    lines = ["/" + p.removeprefix("./").lstrip("/") for p in patterns if p.strip()]
    return pathspec.PathSpec.from_lines("gitignore", lines)


def matches(path: str, globs: Iterable[str]) -> bool:
    """Whether the repo-relative `path` (or a folder above it) matches one of the patterns."""
    spec = _spec(tuple(globs))
    if spec.match_file(path):
        return True
    parts = path.split("/")
    return any(spec.match_file("/".join(parts[:i]) + "/") for i in range(1, len(parts)))


def expand(files: Iterable[str], globs: Iterable[str]) -> list[str]:
    """The `files` (repo-relative) matching any pattern, sorted, without the loop's own."""
    globs = tuple(globs)
    return sorted(f for f in set(files) if matches(f, globs) and not matches(f, LOOP_FILES))


def repo_files(repo: Repo) -> list[str]:
    """The files patterns expand against: tracked, plus untracked ones git does not ignore."""
    return sorted(set(repo.ls_files()) | repo.untracked())


class Paths(msgspec.Struct):
    """Scope patterns expanded into concrete repo-relative paths, sorted."""

    # In scope and not off-limits: the files the edit step may change (and the editor locks).
    files: list[str]
    off_limits: list[str]


def expand_paths(files: Iterable[str], scope: list[str], off_limits: list[str]) -> Paths:
    """The one expansion of (scope, off_limits): an off-limits file is never in scope."""
    files = list(files)
    off = expand(files, off_limits)
    taken = set(off)
    return Paths(files=[f for f in expand(files, scope) if f not in taken], off_limits=off)


def on_disk(root: Path, globs: list[str]) -> set[str]:
    """Files under `root` matching the patterns, tracked or not, ignored ones included: each
    pattern's folder before its first wildcard is walked (links listed, not followed)."""
    out: set[str] = set()
    for glob in globs:
        parts = glob.removeprefix("./").strip("/").split("/")
        fixed = []
        for part in parts:
            if any(ch in part for ch in "*?[\\"):
                break
            fixed.append(part)
        base = root.joinpath(*fixed) if fixed else root
        rel = "/".join(fixed)
        if base.is_file():
            out.add(rel)
            continue
        if not base.is_dir():
            continue
        for folder, dirs, names in os.walk(base):
            dirs[:] = [d for d in dirs if d != ".git"]
            here = Path(folder).relative_to(root).as_posix()
            for name in names + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
                path = name if here == "." else f"{here}/{name}"
                if matches(path, [glob]):
                    out.add(path)
    return out


def literal(path: str) -> str:
    """A pattern matching exactly `path`, whatever characters its name holds."""
    return re.sub(r"([\\*?\[\]])", r"\\\1", path)


# Test files, protected whenever a guard command is set (the guard must not be weakened).
_TEST_FILE = re.compile(r"(^|/)(tests?/|test_[^/]*$|[^/]*_test\.[^/]*$|conftest\.py$)")


def protected(
    off_limits: list[str], scope: list[str], guard: str | None, tracked: list[str]
) -> list[str]:
    """The off-limits globs the loop enforces: the configured ones, plus, when there is a guard,
    the tracked paths its command names and the test files. A path named exactly in `scope`
    stays editable (the user said so)."""
    extra: list[str] = []
    if guard:
        try:
            words = shlex.split(guard)
        except ValueError:
            words = guard.split()
        files = set(tracked)
        for word in words:
            path = word.removeprefix("./").rstrip("/")
            if path in files or (path and any(f.startswith(path + "/") for f in files)):
                extra.append(path)
        extra += [f for f in tracked if _TEST_FILE.search(f)]
    named = set(scope)
    out = list(off_limits)
    for path in extra:
        if path not in named and not matches(path, out):
            out.append(literal(path))
    return out


def lock_paths(repo: Repo, config: Config) -> Paths:
    """The paths a loop on `config` locks and protects now, as the loop itself expands them."""
    tracked = repo.ls_files()
    off = protected(config.scope.off_limits, config.scope.files, config.run.guard, tracked)
    return expand_paths([*tracked, *repo.untracked()], config.scope.files, off)


class Enforcement(msgspec.Struct):
    # Paths kept for the commit.
    allowed: list[str]
    # Human-readable events, recorded with the experiment and shown in progress output.
    events: list[str]
    # Off-limits files that were touched (reverted): the attempt is invalid.
    off_limits: list[str] = msgspec.field(default_factory=list)
    # Other paths outside scope whose changes were undone.
    reverted: list[str] = msgspec.field(default_factory=list)
    # Allowed paths git does not track yet (new files): a commit must add them first.
    added: list[str] = msgspec.field(default_factory=list)

    @property
    def off_limits_touched(self) -> bool:
        return bool(self.off_limits)


# How every stash entry the loop makes begins (guarded_reset.stash); git's reflog line then
# reads "On <branch>: autoresearch: ...".
STASH_MESSAGE = "autoresearch: "


class StashWatch:
    """Notices an edit step that stashes its work, with no git call per edit: the stash's reflog
    (`git stash list` reads the same file) gets a line for each new entry."""

    def __init__(self, repo: Repo) -> None:
        self.repo = repo

    def entries(self) -> list[str]:
        """The stash entries' commits, oldest first."""
        return self.repo.stash_entries()

    def stashed(self, before: list[str]) -> bool:
        """A new entry on top since `before`: the edit stashed something. The loop's own
        (a person's edit it set aside, "autoresearch: ..."; with parallel workers the stash is
        shared, and the coordinator may set one aside while a worker's agent edits) is not."""
        now = self.repo.stash_log()
        if not now or now[-1][0] in set(before):
            return False
        return f": {STASH_MESSAGE}" not in now[-1][1]


def enforce(
    repo: Repo,
    branch: str | None,
    parent: str,
    scope: list[str],
    off_limits: list[str],
    untracked_before: set[str],
    stashed: bool = False,
    dirt: dict[str, bytes | None] | None = None,
    save_as: Callable[[], str] | None = None,
) -> Enforcement:
    """Put the repository back as the loop expects it after an edit; `stashed`: the edit left
    a new stash entry (StashWatch), to bring back and drop. `dirt`: a person's uncommitted
    edits of tracked files outside the scope before the edit (path: content), left alone.
    `save_as`: names a free ref (asked only when something is reverted) under which the edits
    about to be reverted are kept first (a person may have made them while the edit step ran:
    nobody can tell, so nothing is thrown away)."""
    dirt = dirt or {}
    events: list[str] = []
    if repo.in_progress():
        events.append(f"the edit left a {repo.in_progress()} in progress: aborted")
        repo.abort_in_progress()
    now = repo.branch()
    if now != branch:  # `branch` None: a parallel worker's worktree, whose HEAD is detached
        events.append(
            f"the edit switched to {now or 'a detached HEAD'}: back on"
            f" {branch or 'a detached HEAD'}"
        )
        if branch is None:
            repo.detach_head()
        else:
            repo.attach_head(branch)
    if repo.head() != parent:
        events.append("the edit committed or moved HEAD: its changes are kept uncommitted")
        repo.reset_soft(parent)
    if stashed:
        repo.unstage()
        events.append(_unstash(repo))
    changes = repo.status()
    if any(c.code[0] not in " ?" for c in changes):  # unstage: the loop decides what to commit
        repo.unstage()
        changes = repo.status()
    allowed: list[str] = []
    added: list[str] = []
    off: list[str] = []
    reverted: list[str] = []
    restore: list[str] = []
    remove: list[str] = []
    put_backs: list[str] = []  # a person's edited file, changed further by the edit
    keep: dict[str, int] = {}  # reverted for being out of scope (saved first): its event
    for change in changes:
        path = change.path
        if matches(path, list(LOOP_FILES)):
            continue
        if change.untracked and path in untracked_before:
            continue  # the user's own untracked file, there before the edit
        if path in dirt and not matches(path, scope):
            if read_own(repo.root, path) != dirt[path]:  # the edit changed it further
                reverted.append(path)
                put_backs.append(path)
            continue  # the user's own uncommitted edit, there before the edit
        if matches(path, off_limits) or (change.old_path and matches(change.old_path, off_limits)):
            off.append(path)
            keep[path] = len(events)
            events.append(f"off-limits file {path} was edited: reverted")
        elif matches(path, scope) and (change.old_path is None or matches(change.old_path, scope)):
            link = link_in_path(repo.root, path)
            if link:  # the next edit would write through it, outside the repository's files
                reverted.append(path)
                made = "was made a symbolic link" if link == path else f"lies under the link {link}"
                events.append(f"{path} {made}: reverted (no edit writes through a link)")
                (remove if change.untracked else restore).append(path)
                continue
            size = _size(repo.root / path)
            if size <= MAX_FILE_BYTES:
                allowed.append(path)
                if change.untracked:
                    added.append(path)
                continue
            reverted.append(path)
            events.append(
                f"{path} is {size / 2**20:.0f} MB, over the {MAX_FILE_BYTES // 2**20} MB limit"
                " for a committed file: reverted"
            )
        else:
            reverted.append(path)
            keep[path] = len(events)
            events.append(f"{path} is outside the scope: reverted")
        if change.untracked:
            remove.append(path)
        else:
            restore.append(path)
            if change.old_path:
                restore.append(change.old_path)
    savable = [p for p in [*keep, *put_backs] if _savable(repo.root, p)]
    if save_as and savable:
        kept = _keep_reverted(repo, save_as(), savable)
        if kept is None:  # no copy: a person's work may be among them, so it stays (but an
            # off-limits file is put back regardless: the next run must not use an edited one)
            left = {p for p in savable if p not in off}
            for path in left & keep.keys():
                events[keep[path]] = (
                    f"{path} is outside the scope: left as the edit made it (git could not"
                    " keep a copy to revert it)"
                )
            restore = [p for p in restore if p not in left]
            remove = [p for p in remove if p not in left]
            reverted = [p for p in reverted if p not in left]
            put_backs = [p for p in put_backs if p not in left]
        else:
            events.append(kept)
    for path in put_backs:
        if put_back(repo.root, path, dirt[path]):
            events.append(f"{path} is outside the scope: put back as you had left it")
        else:
            events.append(f"{path} lies under a link the edit made: not put back")
    _restore(repo, restore)
    repo.remove_untracked(remove)
    return Enforcement(
        allowed=allowed, events=events, off_limits=off, reverted=reverted, added=added
    )


def _savable(root: Path, rel: str) -> bool:
    """A file git can keep as it is: not behind a link, and not over the size limit (a 10 GB
    checkpoint the edit wrote is not copied into .git)."""
    link = link_in_path(root, rel)
    return (link is None or link == rel) and _size(root / rel) <= MAX_FILE_BYTES


def _keep_reverted(repo: Repo, ref: str, paths: list[str]) -> str | None:
    """Keep `paths` as the edit left them under `ref`; the event that says how to get them
    back, or None when git could not save them."""
    try:
        sha = repo.save_changes(paths, f"autoresearch: {', '.join(paths)} as found after an edit")
        repo.set_ref(ref, sha)
    except (GitError, RepoError, OSError):
        return None
    shown = " ".join(shlex.quote(p) for p in paths[:3])
    return f"what was reverted is kept in {ref} (git checkout {ref} -- {shown} brings it back)"


def _unstash(repo: Repo) -> str:
    """Bring back what the edit stashed (its newest entry) and drop that entry."""
    try:
        repo.stash_apply()
    except GitError:
        # Only the stash's own files can hold a half-applied state: back to HEAD. A person's
        # other uncommitted edits stay (a hard reset took them too); the stash keeps the edit.
        repo.unstage()
        _restore(repo, repo.stash_files())
        return "the edit stashed its changes and they do not apply back: left in `git stash`"
    repo.unstage()
    repo.stash_drop()
    return "the edit stashed its changes: restored from the stash"


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


class Sentinel:
    """Checksums of the off-limits files, taken at the baseline and compared around each run.

    A file whose stat (size, mtime, ctime, inode) is unchanged is not read again: any write
    moves its ctime, which no tool can set back. A changed stat is settled by the checksum.
    """

    def __init__(self, repo: Repo, globs: list[str]) -> None:
        self.repo = repo
        self.files = expand(repo.ls_files(), globs)
        self.sums = checksums(repo.root, self.files)
        self.stats = {f: _signature(repo.root / f) for f in self.files}

    def changed(self) -> list[str]:
        out = []
        for rel in self.files:
            now = _signature(self.repo.root / rel)
            if now == self.stats[rel]:
                continue
            if checksums(self.repo.root, [rel]).get(rel) == self.sums.get(rel):
                self.stats[rel] = now  # touched, same content
            else:
                out.append(rel)
        return out

    def restore(self, paths: list[str], rev: str) -> None:
        """Put `paths` back as they are at `rev`, whatever git's index flags say about them."""
        if not paths:
            return
        self.repo.clear_index_flags(paths)
        for rel in paths:
            data = self.repo.file_at(rev, rel)
            if data is not None:
                (self.repo.root / rel).write_bytes(data)
            self.stats[rel] = _signature(self.repo.root / rel)


def _signature(path: Path) -> tuple[int, int, int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def checksums(root: Path, paths: list[str]) -> dict[str, str]:
    """sha256 of each off-limits file, to notice an evaluator changed behind the loop's back."""
    sums = {}
    for rel in paths:
        target = root / rel
        if target.is_file():
            digest = hashlib.sha256()
            with open(target, "rb") as f:  # in chunks: an off-limits data file may be large
                while chunk := f.read(1 << 20):
                    digest.update(chunk)
            sums[rel] = digest.hexdigest()
    return sums


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
