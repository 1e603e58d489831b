"""The command proposer called for parallel workers: one proposer, each call in its own git
worktree (which has its own git directory, and so its own index.lock)."""

from __future__ import annotations

import threading
from pathlib import Path

from fake_agents import agent_command, git, make_config, make_repo

from autoresearch.agents.base import EditContext
from autoresearch.agents.command import STALE_LOCK, CommandProposer
from autoresearch.experiment import Experiment


def git_dir(root: Path) -> Path:
    found = Path(git(root, "rev-parse", "--git-dir").strip())
    return found if found.is_absolute() else root / found


def test_each_worktree_s_own_index_lock_is_the_one_looked_after(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    trees = [tmp_path / "w1", tmp_path / "w2"]
    for tree in trees:
        git(repo, "worktree", "add", "-q", "--detach", str(tree), "HEAD")
    w1_lock = git_dir(trees[0]) / "index.lock"
    w2_lock = git_dir(trees[1]) / "index.lock"
    # The agent leaves an index.lock behind in its own worktree's git directory. Once `second`
    # exists, a lock of worker 1's appears meanwhile too (its git committing in w1), which no
    # call in w2 may remove.
    second = tmp_path / "second"
    own = 'touch "$(git rev-parse --absolute-git-dir)/index.lock"'
    command = f"{own} && {{ ! test -f {second} || touch {w1_lock}; }} && {agent_command('good')}"
    config = make_config(command)
    proposer = CommandProposer(config, repo)
    base = Experiment(number=0, commit="0" * 40, status="keep", metric=0.1)

    def call(root: Path, number: int):
        ctx = EditContext(root=root, number=number, config=config, history=[base], best=base)
        return proposer.propose(ctx, threading.Event())

    first = call(trees[0], 1)
    assert first.error is None and first.events == [STALE_LOCK]
    assert not w1_lock.exists()
    second.touch()
    done = call(trees[1], 2)
    assert done.error is None and done.events == [STALE_LOCK]
    assert not w2_lock.exists()
    assert w1_lock.exists()
