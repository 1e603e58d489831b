"""Git at the edge: branch, commit, revert, attempt refs, changed files, file at a revision.

The only module that runs git or reads git's own files (refs, HEAD, the stash's reflog); the
rest of the daemon asks it (tests/server/test_git_boundary.py holds the line)."""

from __future__ import annotations

import os
import re
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import git
import msgspec

from .experiment import DiffStats
from .procs import DETACHED

BRANCH_PREFIX = "autoresearch/"
REF_PREFIX = "refs/autoresearch/"
# Files the editor writes while the loop runs: never reverted by the loop, never committed.
EDITOR_FILES = (".vscode/settings.json",)
# Refs that point at commits, never at tag objects: resolved from the ref files in-process.
_COMMIT_REFS = ("refs/heads/", "refs/stash", REF_PREFIX)


# A git command that failed (its status and stderr on it), for callers outside this module.
GitError = git.GitCommandError


class RepoError(RuntimeError):
    """A repository state the loop cannot work in; the message names the fix."""


# How long a git command waits for another process's index.lock before the loop reports it.
INDEX_WAIT_S = 10.0
# How long resolving a name a request gave may take: a ref that blocks (a FIFO under .git/refs)
# must not hang the repository's requests.
GIT_ANSWER_S = 10.0


class PatientGit:
    """GitPython's `repo.git`, but a command refused because another process holds the index
    lock (an editor's git integration, a user's `git status`) is retried for INDEX_WAIT_S, then
    fails with a RepoError naming the lock file. git takes that lock before it changes anything,
    so a refused command did nothing and is safe to run again."""

    def __init__(self, inner: git.Git, lock: Path) -> None:
        self._inner = inner
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._patiently(attr, args, kwargs)

        return call

    def _patiently(self, command: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        deadline = time.monotonic() + INDEX_WAIT_S
        while True:
            try:
                return command(*args, **kwargs)
            except git.GitCommandError as exc:
                if not _index_locked(exc):
                    raise
                if time.monotonic() > deadline:
                    raise RepoError(
                        f"{self._lock} exists: another git process is running or crashed (waited"
                        f" {INDEX_WAIT_S:g} s). Wait for it, or delete that file if no git"
                        " command is running, then resume."
                    ) from None
                time.sleep(0.1)


def _config_env(key: str, value: str) -> dict[str, str]:
    """One `-c key=value` for a single git call, through git's GIT_CONFIG_* variables (after
    any the user's environment sets already)."""
    try:
        count = int(os.environ.get("GIT_CONFIG_COUNT") or 0)
    except ValueError:  # git itself refuses such an environment, with its own message
        count = 0
    return {
        "GIT_CONFIG_COUNT": str(count + 1),
        f"GIT_CONFIG_KEY_{count}": key,
        f"GIT_CONFIG_VALUE_{count}": value,
    }


# The loop's commits do not each start `git maintenance run --auto`: Repo.maintain() does it.
_NO_AUTO_MAINTENANCE = _config_env("maintenance.auto", "false")


class _DetachedGit(git.Git):
    """git commands in their own session (procs.DETACHED): a Ctrl-C at the terminal is the
    loop's to handle (it stops cleanly), and never kills a commit or a reset halfway."""

    def execute(self, command: Any, **kwargs: Any) -> Any:
        return super().execute(command, **{**DETACHED, **kwargs})


class _GitRepo(git.Repo):
    GitCommandWrapperType = _DetachedGit


def _index_locked(exc: git.GitCommandError) -> bool:
    text = str(exc.stderr or "")
    return "index.lock" in text and "File exists" in text


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
            self._repo = _GitRepo(root, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError):
            raise RepoError(
                f"{root} is not a git repository. Run `git init` and commit your files first."
            ) from None
        self.root = Path(self._repo.working_tree_dir or root)
        # The loop's status reads never write the index (git's optional stat-cache refresh):
        # no index.lock taken beside a person's git, and no write that a full disk can refuse
        # before the result is recorded.
        self._repo.git.update_environment(GIT_OPTIONAL_LOCKS="0")
        self.git = PatientGit(self._repo.git, Path(self._repo.git_dir) / "index.lock")
        self._git_dir = Path(self._repo.git_dir)
        self._common_dir = Path(self._repo.common_dir)
        # The loop reads HEAD and writes attempt refs several times per experiment; with plain
        # files refs that is done in-process (no git spawn). Other ref storage (reftable), or
        # refs that must keep a reflog, go through git.
        self._files_refs = _plain_ref_files(self._repo)
        # The (parent, commit) and counts of the last commit(), from git's own summary.
        self._last_stats: tuple[tuple[str, str], DiffStats] | None = None

    # ---- state --------------------------------------------------------------------------------

    def head(self) -> str:
        return self._read_ref("HEAD") or self.git.rev_parse("HEAD")

    def has_commits(self) -> bool:
        try:
            self.head()
            return True
        except git.GitCommandError:
            return False

    def branch(self) -> str | None:
        """The checked-out branch, or None when HEAD is detached."""
        if self._files_refs:
            text = _read_text(self._git_dir / "HEAD")
            if text and text.startswith("ref: refs/heads/"):
                return text[len("ref: refs/heads/") :]
            if text and _is_sha(text):
                return None
        try:
            return self.git.symbolic_ref("--short", "-q", "HEAD")
        except git.GitCommandError:
            return None

    def branch_exists(self, name: str) -> bool:
        return bool(self.git.branch("--list", name))

    def status(self) -> list[Change]:
        """Uncommitted changes, untracked files included (ignored ones not)."""
        out = self.git.status("--porcelain=v1", "-z", "--untracked-files=all")
        return parse_status(out)

    def untracked(self) -> set[str]:
        """Untracked files (ignored ones not), as status() lists them, for a third less time:
        no index refresh, no diff of tracked files."""
        out = self.git.ls_files("-z", "--others", "--exclude-standard")
        return {path for path in out.split("\0") if path}

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

    def commit(self, message: str, paths: list[str] | None = None, tracked: bool = False) -> str:
        """Stage `paths` (all changes when None) and commit; hooks run, as for the user.

        Paths git already knows (edited or deleted files: the loop's usual case) are committed
        in one call, `git commit -- paths`; a new file among them needs `git add` first. The
        summary git prints is kept: diff_stats of this commit then needs no `git diff`.
        `tracked`: git knows every path and the caller has just emptied the staging area
        (scope.enforce does): the paths are added to the index as it is (`--include`) rather
        than committed through a temporary index of their own (`--only`), which writes the
        index three times. (`--include` would leave a new file out without a word.)
        git's automatic maintenance is left to maintain(), run every few experiments."""
        parent = self.head() if self.has_commits() else ""
        if paths:
            try:
                mode = "--include" if tracked else "--only"
                out = self.git.commit(mode, "-m", message, "--", *paths, env=_NO_AUTO_MAINTENANCE)
                return self._committed(parent, out)
            except git.GitCommandError as exc:
                if "did not match any file" not in str(exc.stderr):
                    raise
        if paths is None:
            self.git.add("-A")
        elif paths:
            self.git.add("-A", "--", *paths)
        return self._committed(parent, self.git.commit("-m", message, env=_NO_AUTO_MAINTENANCE))

    def maintain(self) -> None:
        """git's automatic maintenance (`gc --auto`: packs loose objects past a threshold),
        which every `git commit` would otherwise start as one more process; the loop runs it
        every few experiments and when it stops."""
        self.git.maintenance("run", "--auto", "--quiet")

    def _committed(self, parent: str, summary: str) -> str:
        sha = self.head()
        stats = parse_commit_summary(summary, sha)
        self._last_stats = ((parent, sha), stats) if stats and parent else None
        return sha

    def set_ref(self, ref: str, sha: str, old: str | None = None) -> None:
        """Create `ref` at `sha`, or move it from `old`. An attempt ref is never overwritten:
        one that already points elsewhere (and was not expected at `old`) is a RepoError."""
        current = self.resolve(ref)
        if current == sha:
            return
        if current is not None and current != old:
            raise RepoError(
                f"{ref} already points at {current[:7]}, not {sha[:7]}: an attempt ref is never"
                " overwritten. Run again: resume numbers experiments after every existing ref."
            )
        if current is None and self._files_refs and _is_sha(sha) and self._write_ref(ref, sha):
            return
        # Create-only ("" as the old value) or compare-and-swap: git refuses a ref that moved.
        self.git.update_ref(ref, sha, current or "")

    def attempt_refs(self, tag: str) -> dict[int, str]:
        """`refs/autoresearch/<tag>/<n>` by number (the retired `<n>-crash1`, ... left out)."""
        prefix = f"{REF_PREFIX}{tag}/"
        out = self.git.for_each_ref("--format=%(objectname) %(refname)", prefix)
        refs: dict[int, str] = {}
        for line in out.splitlines():
            sha, _, name = line.partition(" ")
            if name[len(prefix) :].isdigit():
                refs[int(name[len(prefix) :])] = sha
        return refs

    def ref_commits(self, prefix: str) -> set[str]:
        """The commits the refs under `prefix` point at."""
        return set(self.git.for_each_ref("--format=%(objectname)", prefix).split())

    def commits_between(self, base: str, tip: str) -> list[tuple[str, str]]:
        """(sha, subject) of the commits in base..tip, oldest first."""
        out = self.git.log("--reverse", "--format=%H %s", f"{base}..{tip}")
        return [(line[:40], line[41:]) for line in out.splitlines() if line]

    def is_ancestor(self, older: str, newer: str) -> bool:
        try:
            self.git.merge_base("--is-ancestor", older, newer)
            return True
        except git.GitCommandError:
            return False

    def stash_push(self, message: str, paths: list[str]) -> None:
        """Put a person's changes of `paths` aside under a named stash entry."""
        self.git.stash("push", "-q", "-m", message, "--", *paths)

    def save_changes(self, paths: list[str], message: str) -> str:
        """A commit on top of HEAD holding `paths` as the working tree has them (a deleted one
        deleted), made through a private index: the working tree, the index and the stash
        stay as they are. What the loop is about to revert stays reachable through it."""
        index = Path(self._repo.git_dir) / f"autoresearch-save-{os.getpid()}.index"
        env = {"GIT_INDEX_FILE": str(index)}
        try:
            self.git.read_tree("HEAD", env=env)
            self.git.add("-A", "--", *paths, env=env)
            tree = self.git.write_tree(env=env)
            return str(self.git.commit_tree(tree, "-p", "HEAD", "-m", message, env=env))
        finally:
            index.unlink(missing_ok=True)

    def _read_ref(self, name: str, depth: int = 0) -> str | None:
        """The sha `name` (HEAD or refs/...) points at, read from the ref files; None when
        anything is unusual, and the caller asks git."""
        if not self._files_refs or depth > 4:
            return None
        base = self._git_dir if name == "HEAD" else self._common_dir
        text = _read_text(base / name)
        if text is None:
            return self._packed_ref(name) if name != "HEAD" else None
        if text.startswith("ref: "):
            return self._read_ref(text[5:].strip(), depth + 1)
        return text if _is_sha(text) else None

    def _ref_absent(self, name: str) -> bool:
        return not (self._common_dir / name).exists() and self._packed_ref(name) is None

    def _packed_ref(self, name: str) -> str | None:
        text = _read_text(self._common_dir / "packed-refs")
        for line in (text or "").splitlines():
            sha, _, ref = line.partition(" ")
            if ref == name and _is_sha(sha):
                return sha
        return None

    def _write_ref(self, ref: str, sha: str) -> bool:
        """Create or move a loose ref as git does (lock file, then rename). False: let git."""
        path = self._common_dir / ref
        if not ref.startswith(REF_PREFIX) or ".." in ref:
            return False
        lock = path.with_name(path.name + ".lock")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except OSError:
            return False  # a ref directory in the way, a held lock: git reports it properly
        try:
            os.write(fd, f"{sha}\n".encode())
        finally:
            os.close(fd)
        os.replace(lock, path)
        return True

    def resolve(self, rev: str) -> str | None:
        """The loop's own revisions (HEAD, its refs, recorded shas); a name from a request or a
        file goes through revision.commit, which only git resolves."""
        plain = ".." not in rev and not any(c in rev for c in "~^@:{}[]*? \\")
        if plain and (rev == "HEAD" or rev.startswith(_COMMIT_REFS)):  # only ever commits
            sha = self._read_ref(rev)
            if sha or (self._files_refs and rev != "HEAD" and self._ref_absent(rev)):
                return sha
        try:
            return self.git.rev_parse("--verify", "-q", f"{rev}^{{commit}}")
        except git.GitCommandError:
            return None

    @property
    def common_dir(self) -> Path:
        return self._common_dir

    def ignored(self, path: str) -> bool:
        """Whether git ignores `path` (a file or folder need not exist)."""
        try:
            self.git.check_ignore("-q", "--no-index", "--", path)
            return True
        except git.GitCommandError:
            return False

    def commit_of(self, name: str) -> str | None:
        """The commit `name` names, asked of git (which refuses ref names leaving .git/)."""
        try:
            return (
                self.git.rev_parse(
                    "--verify", "-q", f"{name}^{{commit}}", kill_after_timeout=GIT_ANSWER_S
                )
                or None
            )
        except git.GitCommandError as exc:
            if "Timeout" in str(exc.stderr or ""):  # a ref that never answers (a FIFO in .git)
                raise RepoError(
                    f"git did not resolve {name!r} within {GIT_ANSWER_S:g} s: a ref of this"
                    " repository cannot be read (is something under .git/refs not a file?)."
                ) from None
            return None

    def reset_keep(self, sha: str) -> None:
        """Move HEAD to `sha`, updating only the files that differ between HEAD and `sha`;
        other uncommitted changes stay (git refuses when one of those files has some). The
        editor's own files are kept (the extension's read-only locks live in
        .vscode/settings.json, which a repository may track)."""
        self._reset(sha, "--keep")

    def _reset(self, sha: str, mode: str) -> None:
        kept = {}
        for rel in EDITOR_FILES:
            try:
                kept[rel] = (self.root / rel).read_bytes()
            except OSError:
                pass
        self.git.reset("-q", mode, sha)
        for rel, data in kept.items():
            path = self.root / rel
            try:
                if path.read_bytes() == data:
                    continue
            except OSError:
                pass
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

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

    def tracked_status(self) -> list[Change]:
        """Uncommitted changes of tracked files only (no untracked scan): cheaper than status()."""
        return parse_status(self.git.status("--porcelain=v1", "-z", "--untracked-files=no"))

    def stage(self, paths: list[str]) -> None:
        self.git.add("-A", "--", *paths)

    def untrack(self, paths: list[str]) -> None:
        """Take `paths` out of the index (the files stay); paths git does not track are fine."""
        self.git.rm("-q", "--cached", "--ignore-unmatch", "--", *paths)

    def commit_staged(self, message: str) -> None:
        self.git.commit("-q", "-m", message, env=_NO_AUTO_MAINTENANCE)

    def commit_only(self, message: str, paths: list[str]) -> None:
        """Commit the changes of `paths` (tracked already), nothing else that is staged."""
        self.git.commit("-q", "-m", message, "--", *paths, env=_NO_AUTO_MAINTENANCE)

    def unstage(self) -> None:
        """Empty the staging area (`git reset -q`); the files keep their changes."""
        self.git.reset("-q")

    def reset_soft(self, sha: str) -> None:
        """Move HEAD to `sha`; index and files keep what was committed after it."""
        self.git.reset("-q", "--soft", sha)

    def reset_mixed(self, sha: str) -> None:
        """Move HEAD to `sha` and unstage; the files keep what was committed after it."""
        self.git.reset("-q", "--mixed", sha)

    def attach_head(self, branch: str) -> None:
        """Point HEAD at `branch` again (after a checkout elsewhere), touching no file."""
        self.git.symbolic_ref("HEAD", f"refs/heads/{branch}")

    def checkout(self, branch: str) -> None:
        self.git.checkout("-q", branch)

    def delete_branch(self, branch: str) -> None:
        self.git.branch("-q", "-D", branch)

    def stash_apply(self) -> None:
        """Apply the newest stash entry (it stays in the stash); GitCommandError on conflict."""
        self.git.stash("apply", "-q")

    def stash_drop(self) -> None:
        self.git.stash("drop", "-q")

    def stash_entries(self) -> list[str]:
        """The stash entries' commits, oldest first, read from the stash's reflog (the file
        `git stash list` reads), with no git process."""
        return [sha for sha, _ in self.stash_log()]

    def stash_log(self) -> list[tuple[str, str]]:
        """The stash entries' (commit, message), oldest first, from the stash's reflog."""
        try:
            text = (self._common_dir / "logs" / "refs" / "stash").read_text(
                encoding="utf-8", errors="replace"
            )
        except FileNotFoundError:
            return []
        return [
            (line.split(" ", 2)[1], line.partition("\t")[2])
            for line in text.splitlines()
            if line.count(" ") >= 2
        ]

    def stash_files(self) -> list[str]:
        """The files the newest stash entry changed."""
        return self.changed_files("stash@{0}^1", "stash@{0}")

    def changed_files(self, a: str, b: str, paths: list[str] | None = None) -> list[str]:
        """Paths that differ between commits `a` and `b` (optionally only among `paths`)."""
        only = ["--", *paths] if paths else []
        return [p for p in self.git.diff("--name-only", "-z", a, b, *only).split("\0") if p]

    def changed_since(self, parent: str, paths: list[str] | None = None) -> tuple[list[str], str]:
        """Paths changed in the working tree since `parent`, and git's one-line count of them
        ("2 files changed, 3 insertions(+)"; "" when none)."""
        only = ["--", *paths] if paths else []
        stat = self.git.diff("--shortstat", parent, *only)
        names = self.git.diff("--name-only", "-z", parent, *only).split("\0")
        return [p for p in names if p], stat.strip()

    def diff_text(self, parent: str, sha: str) -> str:
        """The whole diff between two commits."""
        return self.git.diff(parent, sha)

    def same_tree(self, a: str, b: str) -> bool:
        """Whether two commits hold the same files (read through git's object reader)."""
        return self._repo.commit(a).tree.hexsha == self._repo.commit(b).tree.hexsha

    def delete_ref(self, ref: str, old: str) -> None:
        """Remove `ref` if it still points at `old`."""
        self.git.update_ref("-d", ref, old)

    def detach_head(self) -> None:
        """HEAD detached where it is (a parallel worker's checkout; changes stay)."""
        self.git.checkout("-q", "--detach")

    def checkout_clean(self, sha: str) -> bool:
        """A worker's checkout put on `sha` with nothing else left in it (untracked files go,
        ignored ones stay); False when git could not."""
        try:
            self.abort_in_progress()
            self.git.checkout("-q", "--detach", "-f", sha)
            self.git.clean("-q", "-f", "-d")
            return True
        except git.GitCommandError:
            return False

    def add_worktree(self, path: Path, sha: str) -> None:
        """A new worktree at `path`, HEAD detached on `sha` (stale registrations pruned)."""
        self.git.worktree("prune")
        self.git.worktree("add", "-q", "--detach", str(path), sha)

    def tree_of(self, sha: str) -> str:
        return self._repo.commit(sha).tree.hexsha

    def merge_onto(self, base: str, sha: str) -> str | None:
        """The tree of `sha`'s change applied onto `base`: a three-way merge at their merge base
        (`sha`'s parent, an older best of the same branch), made without any working tree
        (git merge-tree, git 2.38+). None when the two conflict."""
        try:
            out = self.git.merge_tree("--write-tree", "--no-messages", base, sha)
        except git.GitCommandError as exc:
            if exc.status == 1:
                return None
            raise
        return str(out).split("\n", 1)[0].strip()

    def commit_tree(self, tree: str, parent: str, message: str) -> str:
        """A commit of `tree` on `parent`, made without touching HEAD, the index or files."""
        return str(self.git.commit_tree(tree, "-p", parent, "-m", message)).strip()

    def present_at(self, sha: str, paths: list[str]) -> set[str]:
        """Which of `paths` are files at `sha`."""
        out = self.git.ls_tree("-r", "-z", "--name-only", sha, "--", *paths)
        return {p for p in out.split("\0") if p}

    def clear_index_flags(self, paths: list[str]) -> None:
        """Drop assume-unchanged and skip-worktree from `paths`: git sees their edits again."""
        self.git.update_index("--no-assume-unchanged", "--no-skip-worktree", "--", *paths)

    # ---- history ------------------------------------------------------------------------------

    def parent(self, sha: str) -> str | None:
        try:
            return self.git.rev_parse("--verify", "-q", f"{sha}^")
        except git.GitCommandError:
            return None

    def diff_stats(self, parent: str, sha: str) -> DiffStats:
        """Files and lines changed: from the summary of the commit just made, or in one git
        call (the counts need no status letters)."""
        if self._last_stats and self._last_stats[0] == (parent, sha):
            return self._last_stats[1]
        files = merge_diff(self.git.diff("--numstat", "-z", "-M", parent, sha), "")
        return DiffStats(
            files=len(files),
            additions=sum(f.additions for f in files),
            deletions=sum(f.deletions for f in files),
        )

    def diff_files(self, parent: str, sha: str) -> list[FileDiff]:
        numstat = self.git.diff("--numstat", "-z", "-M", parent, sha)
        names = self.git.diff("--name-status", "-z", "-M", parent, sha)
        return merge_diff(numstat, names)

    def file_at(self, rev: str, path: str, max_bytes: int | None = None) -> bytes | None:
        """A file's bytes at `rev`; a blob over `max_bytes` is refused before it is read."""
        try:
            blob = self._repo.commit(rev).tree / path
        except (KeyError, ValueError, git.BadName):
            return None
        if blob.type != "blob":  # a directory (or submodule) is no file's content
            return None
        if max_bytes is not None and blob.size > max_bytes:
            raise RepoError(
                f"{path} at {rev[:12]} is {blob.size / 2**20:.1f} MiB; at most"
                f" {max_bytes / 2**20:g} MiB is read. Open it with git instead"
                f" (git show {rev[:12]}:{path})."
            )
        return blob.data_stream.read()

    def subject(self, sha: str) -> str:
        return self.git.log("-1", "--format=%s", sha)

    def ls_files(self) -> list[str]:
        return [p for p in self.git.ls_files("-z").split("\0") if p]

    def close(self) -> None:
        self._repo.close()


def _git_in(root: Path) -> _DetachedGit:
    """git for a folder that may not be a repository yet, or is one the loop holds no Repo of."""
    return _DetachedGit(str(root))


def create(root: Path, user: str, email: str, message: str) -> None:
    """A new repository on branch main at `root` with every file there committed (the demo)."""
    _git_in(root).init("-q", "-b", "main")
    g = _git_in(root)
    g.config("user.name", user)
    g.config("user.email", email)
    g.add("-A")
    g.commit("-q", "-m", message)


def snapshot(root: Path, dest: Path) -> str:
    """The files of the commit checked out at `root` (HEAD), without .git, written into the
    empty folder `dest` (a Ray job's working_dir); returns that commit."""
    g = _git_in(root)
    sha = g.rev_parse("HEAD", kill_after_timeout=30).strip()
    archive = dest.parent / f"{dest.name}.tar"
    g.archive("--format=tar", "-o", str(archive), sha, kill_after_timeout=300)
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(dest, filter="data")  # git's own paths: never outside dest
    finally:
        archive.unlink(missing_ok=True)
    return sha


def git_version(root: Path) -> tuple[tuple[int, int], str]:
    """git's (major, minor) and its own words for it."""
    out = _git_in(root).version()
    found = re.search(r"(\d+)\.(\d+)", out)
    return ((int(found[1]), int(found[2])) if found else (0, 0)), out.strip()


def valid_branch_name(branch: str) -> bool:
    """git's own check-ref-format of refs/heads/<branch> (the plain form: no @{-N} expansion)."""
    try:
        _DetachedGit().check_ref_format(f"refs/heads/{branch}", kill_after_timeout=30)
        return True
    except git.GitCommandError:
        return False


def git_dir_of(root: Path) -> Path | None:
    """The repository's git directory (a linked worktree has its own), or None."""
    try:
        out = _git_in(root).rev_parse("--git-dir", kill_after_timeout=30).strip()
    except (git.CommandError, OSError):  # git failed, or is not installed
        return None
    return Path(out) if os.path.isabs(out) else root / out


def tracked_files(root: Path) -> list[str]:
    """The tracked files of the repository at `root` ([] when it is none)."""
    try:
        out = _git_in(root).ls_files("-z", kill_after_timeout=30)
    except (git.CommandError, OSError):  # git failed, or is not installed
        return []
    return [p for p in out.split("\0") if p]


def checked_out_branch(root: Path) -> str | None:
    """The branch HEAD names, "(detached)", or None when HEAD cannot be read; from the HEAD
    file, without a git process (the observer asks every second)."""
    try:
        text = head_file(root).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    prefix = "ref: refs/heads/"
    return text[len(prefix) :] if text.startswith(prefix) else "(detached)"


def head_file(root: Path) -> Path:
    """The file HEAD lives in (a linked worktree's `.git` file names its git directory)."""
    dotgit = root / ".git"
    if dotgit.is_file():
        try:
            text = dotgit.read_text(encoding="utf-8").strip()
        except OSError:
            return dotgit / "HEAD"
        if text.startswith("gitdir:"):
            return (root / text[len("gitdir:") :].strip()) / "HEAD"
    return dotgit / "HEAD"


def short_commits(root: Path, commits: list[str]) -> dict[str, tuple[str, str]]:
    """Full sha and first parent ("" for a root commit) of abbreviated commit names; names that
    are no commit are left out. Two git processes, whatever the count."""

    def ask(args: list[str], lines: object) -> str:
        text = "".join(f"{line}\n" for line in lines)  # type: ignore[attr-defined]
        with tempfile.TemporaryFile() as names:
            names.write(text.encode())
            names.seek(0)
            try:
                return str(_git_in(root).execute(["git", *args], istream=names))
            except (git.CommandError, OSError):  # git failed, or is not installed
                return ""

    found = ask(["cat-file", "--batch-check=%(objectname) %(objecttype)"], commits)
    full: dict[str, str] = {}
    for short, line in zip(commits, found.splitlines(), strict=False):
        sha, _, kind = line.partition(" ")
        if kind == "commit":
            full[short] = sha
    parents: dict[str, str] = {}
    if full:
        out = ask(["rev-list", "--no-walk=unsorted", "--parents", "--stdin"], full.values())
        for line in out.splitlines():
            shas = line.split()
            if shas:
                parents[shas[0]] = shas[1] if len(shas) > 1 else ""
    return {short: (sha, parents.get(sha, "")) for short, sha in full.items()}


def _plain_ref_files(repo: git.Repo) -> bool:
    try:
        reader = repo.config_reader()
        storage = str(reader.get_value("extensions", "refstorage", "files")).lower()
        log_all = str(reader.get_value("core", "logallrefupdates", "")).lower()
    except Exception:  # an unreadable config: git itself will say what is wrong
        return False
    return storage == "files" and log_all != "always"


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and all(c in "0123456789abcdef" for c in text)


# `git commit`'s summary: "[branch 1a2b3c4] subject", then " 2 files changed, 3 insertions(+),
# 1 deletion(-)" (either count left out when 0, unless both are).
_SUMMARY_HEAD = re.compile(r"^\[[^\n]*?([0-9a-f]{7,64})\] ")
_SUMMARY_STAT = re.compile(
    r"^ (\d+) files? changed(?:, (\d+) insertions?\(\+\))?(?:, (\d+) deletions?\(-\))?$",
    re.MULTILINE,
)


def parse_commit_summary(out: str, sha: str) -> DiffStats | None:
    """The counts in `git commit`'s summary of `sha`; None when it is not that summary (another
    language, a hook that printed over it or amended the commit): git diff is asked then."""
    head, stat = _SUMMARY_HEAD.match(out), _SUMMARY_STAT.search(out)
    if not head or not stat or not sha.startswith(head.group(1)):
        return None
    return DiffStats(
        files=int(stat.group(1)),
        additions=int(stat.group(2) or 0),
        deletions=int(stat.group(3) or 0),
    )


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
