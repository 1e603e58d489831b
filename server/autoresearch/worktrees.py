"""The parallel workers' checkouts: `.autoresearch/worktrees/<w>`, git worktrees of the
repository with a detached HEAD, one per worker, each reset to the commit its next experiment
starts from. They are the loop's own: nothing a person made lives there, so a worker's leftovers
are cleaned without asking. The folder is ignored (.autoresearch/ is in .git/info/exclude).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import git

from .repo import Repo, RepoError

WORKTREES_DIR = ".autoresearch/worktrees"
# One worktree is made (or pruned) at a time: `git worktree prune` beside another worker's
# `git worktree add` could take the registration being made.
_MAKING = threading.Lock()


def path_of(root: Path, worker: int) -> Path:
    return root / WORKTREES_DIR / str(worker)


def checkout(main: Repo, worker: int, sha: str) -> Path:
    """Worker `worker`'s worktree on `sha`, with no other change left in it: made when missing
    (or broken), reused when it exists. Untracked files are removed; files git ignores stay
    (build caches), as they do in a one-worker loop."""
    path = path_of(main.root, worker)
    if not (path / ".git").is_file():
        _make(main, path, sha)
        return path
    try:
        wt = Repo(path)
    except RepoError:
        _make(main, path, sha)
        return path
    try:
        wt.abort_in_progress()
        wt.git.checkout("-q", "--detach", "-f", sha)
        wt.git.clean("-q", "-f", "-d")
    except git.GitCommandError:
        wt.close()
        _make(main, path, sha)
        return path
    wt.close()
    return path


def _make(main: Repo, path: Path, sha: str) -> None:
    with _MAKING:
        if path.exists():
            shutil.rmtree(path)
        main.git.worktree("prune")
        path.parent.mkdir(parents=True, exist_ok=True)
        main.git.worktree("add", "-q", "--detach", str(path), sha)
