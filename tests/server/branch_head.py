"""Where a session's branch stands once the loop has stopped."""

from __future__ import annotations

from pathlib import Path

from conftest import git


def head_past_notes(root: Path) -> str:
    """HEAD, past the commits that only refresh autoresearch.md (the loop makes one every 5
    experiments and one when a loop ends): the experiment whose code the branch holds."""
    sha = git(root, "rev-parse", "HEAD")
    while git(root, "log", "-1", "--format=%s", sha) == "autoresearch: refresh notes":
        changed = git(root, "diff-tree", "--no-commit-id", "--name-only", "-r", sha)
        assert changed == "autoresearch.md", f"a notes commit changed {changed}"
        sha = git(root, "rev-parse", f"{sha}^")
    return sha
