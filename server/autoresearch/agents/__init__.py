"""The edit step's proposers and the factory that picks one from the config."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Config
from .base import EditContext, EditOutcome, Proposer

if TYPE_CHECKING:
    from .editor import EditorAsk


def make_proposer(
    config: Config, root: Path, tracked: list[str], editor: EditorAsk | None = None
) -> Proposer:
    """Raises a ValueError/RuntimeError subclass naming the fix when the agent cannot work.
    `editor`: how to ask VS Code's chat model, where a client is connected (the daemon)."""
    kind = config.agent.kind
    if kind == "editor":
        from .editor import EditorProposer

        editing = EditorProposer(config, root, editor)
        editing.preflight()
        return editing
    if kind == "manual":
        from .manual import ManualProposer

        return ManualProposer()
    if kind == "command":
        from .command import CommandProposer

        proposer = CommandProposer(config, root)
        proposer.preflight()
        return proposer
    from .sweep import SweepProposer

    return SweepProposer(config, root, tracked)


def prepare_proposer(config: Config, root: Path, editor: EditorAsk | None = None) -> Proposer:
    """The proposer for a loop about to start, after the checks that do not depend on the
    working tree's state, so a repository without commits or a glob matching nothing is
    reported as such rather than as an agent problem."""
    from .. import preflight
    from ..repo import Repo

    repo = Repo(root)
    try:
        preflight.check_has_commits(repo)
        tracked = repo.ls_files()
    finally:
        repo.close()
    preflight.check_config(root, config, tracked)
    return make_proposer(config, root, tracked, editor)


__all__ = ["EditContext", "EditOutcome", "Proposer", "make_proposer", "prepare_proposer"]
