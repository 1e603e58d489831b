"""The parallel workers' checkouts: `.autoresearch/worktrees/<w>`, git worktrees of the
repository with a detached HEAD, one per worker, each reset to the commit its next experiment
starts from. They are the loop's own: nothing a person made lives there, so a worker's leftovers
are cleaned without asking. The folder is ignored (.autoresearch/ is in .git/info/exclude).
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

from .repo import Repo, RepoError

WORKTREES_DIR = ".autoresearch/worktrees"
# One worktree is made at a time: `git worktree prune` beside another worker's `git worktree
# add` could take the registration being made.
_MAKING = threading.Lock()


def path_of(root: Path, worker: int) -> Path:
    return root / WORKTREES_DIR / str(worker)


class Worktree:
    """Worker `worker`'s checkout, made on first use (or when broken) and reused after."""

    def __init__(self, main: Repo, worker: int) -> None:
        self.main = main
        self.path = path_of(main.root, worker)
        self.repo: Repo | None = None

    def at(self, sha: str) -> tuple[Repo, bool]:
        """The worktree on `sha` with no other change left in it, and whether it was made
        anew. Untracked files go; files git ignores stay (build caches), as they do in a
        one-worker loop."""
        mine = self.repo is not None and (self.path / ".git").is_file()
        if mine and self.repo is not None and self.repo.checkout_clean(sha):
            return self.repo, False
        self.close()
        if (self.path / ".git").is_file():  # left by an earlier loop: reused
            try:
                self.repo = Repo(self.path)
            except RepoError:
                self.repo = None
            if self.repo is not None and self.repo.checkout_clean(sha):
                return self.repo, True
            self.close()
        with _MAKING:
            if self.path.exists():
                shutil.rmtree(self.path)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.main.add_worktree(self.path, sha)
        self.repo = Repo(self.path)
        return self.repo, True

    def close(self) -> None:
        if self.repo is not None:
            self.repo.close()
            self.repo = None
