"""Edits stay inside the repository: no write through a symbolic link.

A tracked `ext.py -> ../decoy.py` in scope would let the edit step change a file outside the
repository while git sees nothing change (the link itself is the same). Preflight refuses such
paths (`link_in_path`), and the sweep writes through `write_inside`, which checks again and
opens with O_NOFOLLOW, so a link made after preflight is refused too.
"""

from __future__ import annotations

import os
from pathlib import Path


class ConfinementError(OSError):
    """Writing there would leave the repository; the message names the file and the fix."""


def link_in_path(root: Path, rel: str) -> str | None:
    """The first symbolic link among `rel` and its parent folders (repo-relative), or None."""
    parts = Path(rel).parts
    for i in range(1, len(parts) + 1):
        prefix = Path(*parts[:i])
        if (root / prefix).is_symlink():
            return prefix.as_posix()
    return None


def why_not(root: Path, rel: str, setting: str = "scope.files") -> str | None:
    """Why an edit of `rel` would not write the repository's own file, worded with the fix."""
    link = link_in_path(root, rel)
    if link is None:
        return None
    target = os.readlink(root / link)
    where = (root / link).resolve()
    outside = not where.is_relative_to(root.resolve())
    what = f"{rel} is a symbolic link" if link == rel else f"{rel} lies under {link}, a link"
    return (
        f"{setting} matches {rel}, but {what} to {target}"
        f"{' (outside the repository)' if outside else ''}: an edit would write through it to"
        f" another file, and git would see no change. Take {link} out of {setting}, or replace"
        " the link with a real file and commit it."
    )


def write_inside(root: Path, rel: str, text: str) -> None:
    """Write `rel` under `root`, refusing a link anywhere on its path."""
    reason = why_not(root, rel)
    if reason:
        raise ConfinementError(f"Refused to edit {rel}: {reason}")
    fd = os.open(root / rel, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
