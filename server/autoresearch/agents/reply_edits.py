"""A language model's reply as edits: SEARCH/REPLACE blocks (as aider writes them) or whole files.

Pure text work plus one confined write: `parse` reads the reply into edits and format problems,
`plan` checks every edit against the editable files and works out the new contents in memory,
`write` puts them in place. A reply with any problem writes nothing; its problems are worded
for the next call ("told back as for any agent").

    DESCRIPTION: lower the learning rate 3e-4 -> 2e-4
    train.py
    <<<<<<< SEARCH
    LR = 3e-4
    =======
    LR = 2e-4
    >>>>>>> REPLACE

A whole file is a fenced block whose info string or preceding line names its path.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import msgspec

from .. import confine
from ..scope import matches

_SEARCH = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_REPLACE = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")
_FENCE = re.compile(r"^(`{3,}|~{3,})(.*)$")
_DESCRIPTION = re.compile(r"^\s*\**DESCRIPTION\**\s*:\s*(.+)$", re.IGNORECASE)
_MAX_DESCRIPTION = 200
# A file larger than this is not written from a reply (a runaway model, not an edit).
MAX_FILE_BYTES = 2_000_000


class SearchReplace(msgspec.Struct):
    path: str
    search: str
    replace: str


class WholeFile(msgspec.Struct):
    path: str
    text: str


FileEdit = SearchReplace | WholeFile


class Parsed(msgspec.Struct):
    description: str | None
    edits: list[FileEdit]
    problems: list[str]


class Plan(msgspec.Struct):
    # New contents by repo-relative path, only for files whose contents change.
    contents: dict[str, str]
    problems: list[str]


def parse(reply: str) -> Parsed:
    """The edits a reply asks for, its DESCRIPTION line, and what breaks the format."""
    lines = reply.replace("\r\n", "\n").split("\n")
    edits: list[FileEdit] = []
    problems: list[str] = []
    description: str | None = None
    path: str | None = None  # the file named last: a block without its own name reuses it
    i = 0
    while i < len(lines):
        line = lines[i]
        if description is None and (m := _DESCRIPTION.match(line)):
            description = " ".join(m.group(1).strip("`* ").split())[:_MAX_DESCRIPTION] or None
            i += 1
            continue
        if _SEARCH.match(line):
            path = _path_before(lines, i) or path
            i = _search_block(lines, i, path, edits, problems)
            continue
        fence = _FENCE.match(line)
        if fence:
            end = _closing(lines, i, fence.group(1))
            body = lines[i + 1 : end]
            named = _path_in_info(fence.group(2)) or _path_before(lines, i)
            if any(_SEARCH.match(b) for b in body):
                path = named or path
                j = 0
                while j < len(body):
                    if _SEARCH.match(body[j]):
                        path = _path_before(body, j) or path
                        j = _search_block(body, j, path, edits, problems)
                    else:
                        j += 1
            elif named:
                path = named
                if end == len(lines):
                    problems.append(f"the block for {named} has no closing fence")
                else:
                    edits.append(WholeFile(named, "\n".join(body) + "\n"))
            i = end + 1
            continue
        i += 1
    return Parsed(description, edits, problems)


def plan(
    root: Path,
    parsed: Parsed,
    editable: list[str],
    off_limits: list[str],
    shown: dict[str, str | None] | None = None,
) -> Plan:
    """New contents for every edit, checked: each path must be one of `editable` (the scope's
    expansion), never off-limits, absolute or climbing out; each SEARCH must match. `shown`:
    the files as the model saw them (None: absent); one that differs now was edited meanwhile
    (by a person) and is never written over."""
    problems = list(parsed.problems)
    allowed = set(editable)
    contents: dict[str, str] = {}
    original: dict[str, str | None] = {}
    stale: set[str] = set()  # changed since the model saw them: never written
    for edit in parsed.edits:
        rel = _normal(edit.path)
        why = _refused(edit.path, rel, allowed, off_limits)
        if why:
            problems.append(why)
            continue
        assert rel is not None
        if rel not in original:
            text, why = _read(root, rel)
            if why:
                problems.append(why)
                continue
            original[rel] = text
            if shown is not None and rel in shown and shown[rel] != text:
                stale.add(rel)
                problems.append(
                    f"{rel} changed while the model was answering (someone else's edit):"
                    " the reply is not applied over it"
                )
            elif text is not None:
                contents[rel] = text
        if rel in stale:
            continue  # said once above
        current = contents.get(rel)
        if isinstance(edit, WholeFile):
            contents[rel] = edit.text
        elif current is None:
            if edit.search.strip():
                problems.append(f"{rel} does not exist yet: its SEARCH text cannot match")
            else:
                contents[rel] = edit.replace
        else:
            new = _replace(current, edit.search, edit.replace)
            if new is None:
                problems.append(
                    f"a SEARCH block for {rel} does not match the file exactly: "
                    + _first_line(edit.search)
                )
            else:
                contents[rel] = new
    for rel, text in contents.items():
        if len(text.encode("utf-8")) > MAX_FILE_BYTES:
            problems.append(f"the new {rel} would be over {MAX_FILE_BYTES} bytes")
    changed = {rel: text for rel, text in contents.items() if text != original.get(rel)}
    return Plan(changed, problems)


def write(root: Path, contents: dict[str, str]) -> list[str]:
    """Write planned contents, each through confine (a link anywhere on the path is refused)."""
    for rel, text in contents.items():
        if (root / rel).exists():
            confine.write_inside(root, rel, text)
        else:
            _create(root, rel, text)
    return sorted(contents)


def _search_block(
    lines: list[str], i: int, path: str | None, edits: list[FileEdit], problems: list[str]
) -> int:
    """Read the block opening at `i`; return the index after it."""
    j = i + 1
    while j < len(lines) and not _DIVIDER.match(lines[j]):
        if _SEARCH.match(lines[j]) or _REPLACE.match(lines[j]):
            break
        j += 1
    if j == len(lines) or not _DIVIDER.match(lines[j]):
        problems.append("a SEARCH block has no ======= line after its search text")
        return j
    k = j + 1
    while k < len(lines) and not _REPLACE.match(lines[k]):
        if _SEARCH.match(lines[k]):
            break
        k += 1
    if k == len(lines) or not _REPLACE.match(lines[k]):
        problems.append("a SEARCH block has no >>>>>>> REPLACE line after its replacement")
        return k
    if path is None:
        problems.append("a SEARCH block names no file: put the file's path on the line before it")
    else:
        search, replace = lines[i + 1 : j], lines[j + 1 : k]
        edits.append(SearchReplace(path, _joined(search), _joined(replace)))
    return k + 1


def _joined(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _closing(lines: list[str], i: int, opener: str) -> int:
    for j in range(i + 1, len(lines)):
        stripped = lines[j].strip()
        if stripped and set(stripped) == {opener[0]} and len(stripped) >= len(opener):
            return j
    return len(lines)


def _path_in_info(info: str) -> str | None:
    """`python train.py`, `train.py`, `path=train.py` after the opening fence."""
    for word in info.split():
        word = word.removeprefix("path=").removeprefix("file=").strip("\"'`")
        if _looks_like_path(word):
            return word
    return None


def _path_before(lines: list[str], i: int) -> str | None:
    """The file named on the line just before `i` (a fence line between them is skipped)."""
    j = i - 1
    if j >= 0 and _FENCE.match(lines[j]):
        j -= 1
    if j < 0:
        return None
    word = lines[j].strip().strip("*`#: ").removeprefix("File:").removeprefix("file:").strip()
    word = word.strip("*`: ")
    return word if _looks_like_path(word) and " " not in word else None


def _looks_like_path(word: str) -> bool:
    return (
        bool(word) and ("." in word or "/" in word) and not word.endswith(".") and len(word) < 300
    )


def _normal(path: str) -> str | None:
    """Repo-relative posix path, or None when it is absolute or climbs out."""
    if "\\" in path or "\0" in path:
        return None
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts:
        return None
    rel = str(PurePosixPath(*[p for p in pure.parts if p != "."])) if pure.parts else ""
    return rel or None


def _refused(raw: str, rel: str | None, allowed: set[str], off_limits: list[str]) -> str | None:
    if rel is None:
        return f"{raw!r} is not a path inside the repository: refused"
    if matches(rel, off_limits):
        return f"{rel} is off-limits: it may not be edited"
    if rel not in allowed:
        return f"{rel} is not one of the files you may edit ({', '.join(sorted(allowed))})"
    return None


def _read(root: Path, rel: str) -> tuple[str | None, str | None]:
    """(text or None when absent, refusal)."""
    why = confine.why_not(root, rel)
    if why:
        return None, f"{rel} may not be edited: {why}"
    try:
        data = (root / rel).read_bytes()
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        return None, f"{rel} could not be read: {exc.strerror or exc}"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, f"{rel} is not UTF-8 text: it cannot be edited from a reply"


def _replace(text: str, search: str, replace: str) -> str | None:
    """The first exact match replaced; else a match that ignores trailing whitespace per line."""
    if search and search in text:
        return text.replace(search, replace, 1)
    if not search.strip():
        return None
    lines = text.splitlines(keepends=True)
    want = [line.rstrip() for line in search.splitlines()]
    for start in range(len(lines) - len(want) + 1):
        if [line.rstrip() for line in lines[start : start + len(want)]] == want:
            return "".join(lines[:start]) + replace + "".join(lines[start + len(want) :])
    return None


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return repr(line.strip()[:80])
    return "(empty)"


def _create(root: Path, rel: str, text: str) -> None:
    """A new file the scope names: its folder must exist and hold no link on the way."""
    why = confine.why_not(root, rel)
    if why:
        raise confine.ConfinementError(f"Refused to create {rel}: {why}")
    fd = os.open(root / rel, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
