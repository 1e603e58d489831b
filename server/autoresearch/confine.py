"""Edits stay inside the repository: no write through a symbolic link.

A tracked `ext.py -> ../decoy.py` in scope would let the edit step change a file outside the
repository while git sees nothing change (the link itself is the same). Preflight refuses such
paths (`link_in_path`), and the sweep writes through `write_inside`, which checks again and
opens with O_NOFOLLOW, so a link made after preflight is refused too. A person's edit put back
after an edit step (`read_own`, `put_back`) is read and written the same way: a link the edit
made there is replaced, never followed (it may point out of the repository, or at a FIFO).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path


class ConfinementError(OSError):
    """Writing there would leave the repository; the message names the file and the fix."""


# The loop's own folder and table. A repository may track either as a link (a clone carries it):
# the lock, the journal, the disk reserve, the logs and the records would go where it points.
STATE_PATHS = (".autoresearch", "results.tsv")


def check_state_paths(root: Path) -> None:
    """Before the loop writes anything: neither of STATE_PATHS is a link (ConfinementError)."""
    for name in STATE_PATHS:
        path = root / name
        if path.is_symlink():
            raise ConfinementError(
                f"{name} is a symbolic link (to {os.readlink(path)}) in {root}: the loop's own"
                " files would be written where it points, outside the repository. Nothing was"
                f" written. Remove the link (git rm {name}, then commit, when it is tracked) and"
                " start again."
            )


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
    """Write `rel` under `root`, refusing a link anywhere on its path; the text replaces the file
    whole, with its mode (write_whole)."""
    reason = why_not(root, rel)
    if reason:
        raise ConfinementError(f"Refused to edit {rel}: {reason}")
    path = root / rel
    data = text.encode("utf-8")
    # Opened as an in-place write would be (no link, a writable file), for the mode it keeps.
    fd = os.open(path, os.O_WRONLY | os.O_NOFOLLOW)
    try:
        mode = stat.S_IMODE(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
    write_whole(path, data, mode)


def write_whole(path: Path, data: bytes, mode: int | None) -> None:
    """`data` as the file at `path`: written beside it, then renamed over it. A loop killed
    meanwhile leaves the old file or the new one, never a truncated one (the next start read an
    empty train.py; a person's edit being put back would be lost), and a hard link to a file
    elsewhere is replaced, not written through. `mode`: the replaced file's; None for a new file
    (0o666 less the umask)."""
    temp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.autoresearch")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            if mode is not None:
                os.fchmod(f.fileno(), mode)
            f.write(data)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


# How read_own gives a symbolic link (its target after this), so that a person's own link is
# told from a file and put back as a link.
LINK = b"\0symbolic link\0"


def read_own(root: Path, rel: str) -> bytes | None:
    """The content of the repository's own file `rel`, never following a link: a link there is
    LINK + its target; None when it is missing, no regular file (a FIFO: never opened), or
    under a linked folder."""
    link = link_in_path(root, rel)
    if link is not None:
        return LINK + os.fsencode(os.readlink(root / rel)) if link == rel else None
    try:
        fd = os.open(root / rel, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        return f.read() if stat.S_ISREG(os.fstat(fd).st_mode) else None


def put_back(root: Path, rel: str, data: bytes | None) -> bool:
    """Give `rel` the content `data` from read_own (None: delete it): whatever stands in its
    place (a link, a FIFO) is replaced, never written through. False, writing nothing, when a
    folder on its path is a link or a folder stands in its place."""
    link = link_in_path(root, rel)
    if link is not None and link != rel:
        return False
    path = root / rel
    try:
        mode: int | None = os.lstat(path).st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None and stat.S_ISDIR(mode):
        return False
    if mode is not None and (data is None or not stat.S_ISREG(mode) or data.startswith(LINK)):
        path.unlink()
    if data is None:
        return True
    path.parent.mkdir(parents=True, exist_ok=True)
    if data.startswith(LINK):
        os.symlink(os.fsdecode(data[len(LINK) :]), path)
        return True
    write_whole(path, data, stat.S_IMODE(mode) if mode is not None and stat.S_ISREG(mode) else None)
    return True
