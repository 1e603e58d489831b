"""Git at the edge: branch, commit, revert, attempt refs, changed files, file at a revision."""

from __future__ import annotations

import os
from pathlib import Path

import git
import msgspec

from .experiment import DiffStats

BRANCH_PREFIX = "autoresearch/"
REF_PREFIX = "refs/autoresearch/"


class RepoError(RuntimeError):
    """A repository state the loop cannot work in; the message names the fix."""


class Change(msgspec.Struct):
    """One entry of `git status`: XY code and path (repo-relative, forward slashes)."""

    code: str
    path: str
    old_path: str | None = None

    @property
    def untracked(self) -> bool:
        return self.code == "??"


class FileDiff(msgspec.Struct):
    path: str
    status: str  # added | modified | deleted | renamed
    additions: int
    deletions: int
    old_path: str | None = None
    binary: bool = False


class Repo:
    def __init__(self, root: Path) -> None:
        try:
            self._repo = git.Repo(root, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise RepoError(
                f"{root} is not a git repository. Run `git init` and commit your files first."
            ) from None
        self.root = Path(self._repo.working_tree_dir or root)
        self.git = self._repo.git

    # ---- state --------------------------------------------------------------------------------

    def head(self) -> str:
        return self.git.rev_parse("HEAD")

    def has_commits(self) -> bool:
        try:
            self.head()
            return True
        except git.GitCommandError:
            return False

    def branch(self) -> str | None:
        """The checked-out branch, or None when HEAD is detached."""
        try:
            return self.git.symbolic_ref("--short", "-q", "HEAD")
        except git.GitCommandError:
            return None

    def branch_exists(self, name: str) -> bool:
        return bool(self.git.branch("--list", name))

    def branches(self, prefix: str = BRANCH_PREFIX) -> list[str]:
        out = self.git.for_each_ref("--format=%(refname:short)", f"refs/heads/{prefix}")
        return [line for line in out.splitlines() if line]

    def status(self) -> list[Change]:
        """Uncommitted changes, untracked files included (ignored ones not)."""
        out = self.git.status("--porcelain=v1", "-z", "--untracked-files=all")
        return parse_status(out)

    def in_progress(self) -> str | None:
        """A merge, rebase, cherry-pick or revert left half done, by name."""
        gitdir = Path(self._repo.git_dir)
        for marker, name in (
            ("MERGE_HEAD", "merge"),
            ("rebase-merge", "rebase"),
            ("rebase-apply", "rebase"),
            ("CHERRY_PICK_HEAD", "cherry-pick"),
            ("REVERT_HEAD", "revert"),
        ):
            if (gitdir / marker).exists():
                return name
        return None

    def index_locked(self) -> bool:
        return (Path(self._repo.git_dir) / "index.lock").exists()

    # ---- changes ------------------------------------------------------------------------------

    def create_branch(self, name: str) -> None:
        self.git.checkout("-b", name)

    def checkout(self, name: str) -> None:
        self.git.checkout(name)

    def commit(self, message: str, paths: list[str] | None = None) -> str:
        """Stage `paths` (all changes when None) and commit; hooks run, as for the user."""
        if paths is None:
            self.git.add("-A")
        elif paths:
            self.git.add("-A", "--", *paths)
        self.git.commit("-q", "-m", message)
        return self.head()

    def set_ref(self, ref: str, sha: str) -> None:
        self.git.update_ref(ref, sha)

    def resolve(self, rev: str) -> str | None:
        try:
            return self.git.rev_parse("--verify", "-q", f"{rev}^{{commit}}")
        except git.GitCommandError:
            return None

    def reset_hard(self, sha: str) -> None:
        self.git.reset("-q", "--hard", sha)

    def restore(self, paths: list[str], sha: str = "HEAD") -> None:
        """Put tracked paths back as they are at `sha`."""
        if paths:
            self.git.checkout(sha, "--", *paths)

    def remove_untracked(self, paths: list[str]) -> None:
        for rel in paths:
            target = self.root / rel
            if target.is_file() or target.is_symlink():
                target.unlink()

    def abort_in_progress(self) -> None:
        state = self.in_progress()
        commands = {
            "merge": ("merge", "--abort"),
            "rebase": ("rebase", "--abort"),
            "cherry-pick": ("cherry_pick", "--abort"),
            "revert": ("revert", "--abort"),
        }
        if state:
            name, flag = commands[state]
            try:
                getattr(self.git, name)(flag)
            except git.GitCommandError:
                pass

    # ---- history ------------------------------------------------------------------------------

    def parent(self, sha: str) -> str | None:
        try:
            return self.git.rev_parse("--verify", "-q", f"{sha}^")
        except git.GitCommandError:
            return None

    def diff_stats(self, parent: str, sha: str) -> DiffStats:
        files = self.diff_files(parent, sha)
        return DiffStats(
            files=len(files),
            additions=sum(f.additions for f in files),
            deletions=sum(f.deletions for f in files),
        )

    def diff_files(self, parent: str, sha: str) -> list[FileDiff]:
        numstat = self.git.diff("--numstat", "-z", "-M", parent, sha)
        names = self.git.diff("--name-status", "-z", "-M", parent, sha)
        return merge_diff(numstat, names)

    def file_at(self, rev: str, path: str) -> bytes | None:
        try:
            blob = self._repo.commit(rev).tree / path
        except (KeyError, ValueError, git.BadName):
            return None
        if blob.type != "blob":  # a directory (or submodule) is no file's content
            return None
        return blob.data_stream.read()

    def subject(self, sha: str) -> str:
        return self.git.log("-1", "--format=%s", sha)

    def log(self, branch: str, limit: int | None = None) -> list[tuple[str, str]]:
        """(sha, subject) pairs, oldest first."""
        args = ["--reverse", "--format=%H%x00%s", branch]
        if limit:
            args.insert(0, f"-{limit}")
        out = self.git.log(*args)
        return [tuple(line.split("\x00", 1)) for line in out.splitlines() if line]  # type: ignore[misc]

    def refs(self, prefix: str) -> dict[str, str]:
        out = self.git.for_each_ref("--format=%(refname) %(objectname)", prefix)
        pairs = (line.split(" ", 1) for line in out.splitlines() if line)
        return {name: sha for name, sha in pairs}

    def ls_files(self) -> list[str]:
        return [p for p in self.git.ls_files("-z").split("\0") if p]

    def is_ignored(self, path: str) -> bool:
        try:
            self.git.check_ignore("-q", path)
            return True
        except git.GitCommandError:
            return False

    def close(self) -> None:
        self._repo.close()


def parse_status(out: str) -> list[Change]:
    parts = out.split("\0")
    changes: list[Change] = []
    i = 0
    while i < len(parts):
        entry = parts[i]
        i += 1
        if len(entry) < 4:
            continue
        code, path = entry[:2], entry[3:]
        old = None
        if code[0] in "RC":
            old = parts[i]
            i += 1
        changes.append(Change(code=code, path=path, old_path=old))
    return changes


def merge_diff(numstat: str, names: str) -> list[FileDiff]:
    kinds = {"A": "added", "M": "modified", "D": "deleted", "R": "renamed", "T": "modified"}
    status: dict[str, tuple[str, str | None]] = {}
    parts = names.split("\0")
    i = 0
    while i < len(parts) - 1:
        code = parts[i]
        if code.startswith(("R", "C")):
            old, new = parts[i + 1], parts[i + 2]
            status[new] = ("renamed", old)
            i += 3
        else:
            status[parts[i + 1]] = (kinds.get(code[:1], "modified"), None)
            i += 2
    files: list[FileDiff] = []
    parts = numstat.split("\0")
    i = 0
    while i < len(parts):
        entry = parts[i]
        i += 1
        if not entry:
            continue
        added, deleted, path = entry.split("\t", 2)
        if not path:  # a rename: the two paths follow as their own fields
            path = parts[i + 1]
            i += 2
        binary = added == "-"
        kind, old = status.get(path, ("modified", None))
        files.append(
            FileDiff(
                path=path,
                status=kind,
                additions=0 if binary else int(added),
                deletions=0 if binary else int(deleted),
                old_path=old,
                binary=binary,
            )
        )
    return files


def to_posix(path: str) -> str:
    return path.replace(os.sep, "/")
