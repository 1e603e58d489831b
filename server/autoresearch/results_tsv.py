"""`results.tsv`: the seed's five columns, written byte for byte; read from any tool's file.

Readers find columns by header name, so files with Karpathy's `val_bpb` header, `0.000000` for a
crash, or extra columns load too (see shared/samples/), and take the status spellings other
tools write (KEEP, kept, revert, error...). A row is appended in the table's own layout, so a
session resumed on another tool's table never breaks it.
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import re
from collections.abc import Iterator
from pathlib import Path

from .diskspace import write_all
from .experiment import Experiment

RESULTS_FILE = "results.tsv"
HEADER = "commit\tmetric\tmemory_gb\tstatus\tdescription\n"
STATUSES = ("keep", "discard", "crash")
# Other tools' spellings (compared lower-cased). A baseline row is the session's first keep.
STATUS_WORDS = {
    **{w: "keep" for w in ("keep", "kept", "baseline", "accept", "accepted", "improved")},
    **{w: "discard" for w in ("discard", "discarded", "revert", "reverted", "reject", "rejected")},
    **{w: "crash" for w in ("crash", "crashed", "error", "failed", "fail", "timeout")},
}
# Metric values other tools write for "no result" (with any status).
SENTINELS = (-999.0, -9999.0)


class ResultsError(ValueError):
    """results.tsv cannot be read; the message names the line and the fix."""


def fold(text: str) -> str:
    """One line, no tabs: the description column must not break the table."""
    return " ".join(text.replace("\t", " ").split())


def format_metric(value: float | None) -> str:
    if value is None:
        return "NA"
    if value != 0 and not (1e-3 <= abs(value) < 1e12):
        return f"{value:.6g}"
    return f"{value:.6f}"


def format_row(exp: Experiment) -> str:
    return (
        f"{exp.commit[:7]}\t{format_metric(exp.metric)}\t{exp.memory_gb:.1f}\t"
        f"{exp.status}\t{fold(exp.description)}\n"
    )


def ensure_header(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        path.write_text(HEADER, encoding="utf-8")


def append(path: Path, exp: Experiment, metric_name: str | None = None) -> None:
    """Append one row durably; a crash mid-write leaves at most a partial last line. A table
    with another layout (another tool's, with more columns) gets the row in its own layout."""
    line = _row_in_layout(path, exp, metric_name).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        write_all(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def _row_in_layout(path: Path, exp: Experiment, metric_name: str | None) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline()
    except FileNotFoundError:
        first = ""
    if first in ("", HEADER) or not first.endswith("\n"):
        return format_row(exp)
    header = first.rstrip("\r\n").split("\t")
    columns = _columns(header, metric_name, path)
    cells = [""] * len(header)  # the table's other columns stay empty
    seed = format_row(exp).rstrip("\n").split("\t")
    fields = ("commit", "metric", "memory", "status", "description")
    for key, value in zip(fields, seed, strict=True):
        if columns[key] >= 0:
            cells[columns[key]] = value
    return "\t".join(cells) + "\n"


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """For reading a whole session: each Experiment brings a few containers, and the cyclic
    collector, run again and again over the growing list, would take twice the read's time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def read(
    path: Path,
    metric_name: str | None = None,
    strict: bool = True,
    warnings: list[str] | None = None,
) -> list[Experiment]:
    """Rows as experiments numbered from 0. Non-strict leaves broken rows out instead of
    raising, says which in `warnings` (one line each, with its line number), and numbers the
    others as if the broken rows were there (#5 stays #5 whatever line above it is broken)."""
    rows: list[Experiment] = []
    with gc_paused():
        _read(path, metric_name, strict, warnings, 0, rows)
    return rows


def first_row(path: Path, metric_name: str | None = None) -> Experiment | None:
    """`read(path, metric_name, strict=False)[0]` (None for no row), reading only as far as
    that row: a resume checks whose table this is by its first row, not by 100,000."""
    with open(path, encoding="utf-8", errors="replace") as f:  # text mode, as read_text
        header = f.readline()
        if not header:
            return None
        cells = header.rstrip("\n").rstrip("\r").split("\t")
        layout = _Layout(cells, _columns(cells, metric_name, path))
        number = -1
        for line in f:
            if not line.strip():
                continue
            number += 1
            try:
                return layout.row(line.rstrip("\n").rstrip("\r").split("\t"), number)
            except ResultsError:
                continue  # read() leaves a broken row out: the next one is its first
    return None


def read_after(path: Path, metric_name: str | None, first: int) -> tuple[int, list[Experiment]]:
    """How many rows the table has, and the rows from number `first` on, read strictly: what
    reconciling with the records needs. Rows before `first` are only counted: the records hold
    those experiments whole (a resume of 100,000 rows parses none of them)."""
    with gc_paused():
        rows: list[Experiment] = []
        data = path.read_bytes()
        count = _read_tail(path, data, metric_name, first, rows)
        if count is None:
            count = _read(path, metric_name, True, None, first, rows)
        return count, rows


# A row `str.strip()` leaves empty, in an ASCII file: the rows _read skips without a number.
_BLANK_ROW = re.compile(rb"\n[ \t\x0b\x0c\x1c-\x1f]*(?=\n)")


def _read_tail(
    path: Path, data: bytes, metric_name: str | None, first: int, rows: list[Experiment]
) -> int | None:
    """_read's answer from the table's last lines only, when each row is one line ending in a
    newline (no blank row, no carriage return, which text mode reads as a newline, ASCII
    only): a resume's 100,000 rows are counted, not split and stripped. None when _read must
    do it."""
    if first <= 0 or b"\r" in data or not data.isascii():
        return None
    body = data[: data.rfind(b"\n") + 1]  # strict: a last line without newline is cut short
    lines = body.count(b"\n")
    if lines < 2 or _BLANK_ROW.search(body):
        return None
    count = lines - 1  # the header is no row
    header = data[: data.index(b"\n")].decode().split("\t")
    layout = _Layout(header, _columns(header, metric_name, path))
    if count <= first:
        return count
    tail = body[:-1].rsplit(b"\n", count - first)[1:]
    for number, line in enumerate(tail, start=first):
        try:
            rows.append(layout.row(line.decode().split("\t"), number))
        except ResultsError as exc:
            raise ResultsError(
                f"{path} line {number + 2}: {exc} Fix or delete that line, then try again."
            ) from None
    return count


def _read(
    path: Path,
    metric_name: str | None,
    strict: bool,
    warnings: list[str] | None,
    first: int,
    rows: list[Experiment],
) -> int:
    """Appends the rows from number `first` on to `rows`; returns how many rows there are."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines and strict:
        # A last line without newline is a write cut short: it was never a decided row.
        lines.pop()
    if not lines:
        return 0
    header = lines[0].rstrip("\r").split("\t")
    layout = _Layout(header, _columns(header, metric_name, path))
    number = -1  # a row left out keeps its number: the rows after it are not renumbered
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        number += 1
        if number < first:
            continue
        try:
            rows.append(layout.row(line.rstrip("\r").split("\t"), number))
        except ResultsError as exc:
            if strict:
                raise ResultsError(
                    f"{path} line {lineno}: {exc} Fix or delete that line, then try again."
                ) from None
            if warnings is not None:
                warnings.append(
                    f"{path.name} line {lineno} is left out: {exc} Fix or delete that line."
                )
    return number + 1


def _columns(header: list[str], metric_name: str | None, path: Path) -> dict[str, int]:
    index = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [c for c in ("commit", "status") if c not in index]
    if missing:
        raise ResultsError(
            f"{path}: the header has no {' or '.join(missing)} column"
            f" (found: {', '.join(header)}). The first line must be: {HEADER.strip()!r}."
        )
    if metric_name and metric_name.lower() in index:
        metric = index[metric_name.lower()]
    elif "metric" in index:
        metric = index["metric"]
    else:
        metric = index["commit"] + 1  # the seed's layout: the metric follows the commit
    return {
        "commit": index["commit"],
        "metric": metric,
        "status": index["status"],
        "memory": index.get("memory_gb", -1),
        "description": index.get("description", -1),
    }


class _Layout:
    """Where each field sits in one file's rows, worked out once per file (a session of
    100,000 rows is read at every resume and by the observer)."""

    def __init__(self, header: list[str], columns: dict[str, int]) -> None:
        self.width = len(header)
        self.header = header
        self.commit, self.metric = columns["commit"], columns["metric"]
        self.status, self.memory = columns["status"], columns["memory"]
        self.description = columns["description"]
        self.description_last = self.description == self.width - 1
        known = set(columns.values())
        self.extra = [i for i in range(self.width) if i not in known]

    def row(self, cells: list[str], number: int) -> Experiment:
        width = self.width
        if len(cells) != width:
            if len(cells) < width:
                if self.description_last and len(cells) == width - 1:
                    cells = [*cells, ""]
                else:
                    raise ResultsError(
                        f"expected {width} tab-separated columns, found {len(cells)}."
                    )
            elif self.description_last:
                # Tabs inside a hand-edited description: fold them back into the last column.
                cells = [*cells[: width - 1], " ".join(cells[width - 1 :])]
        status = STATUS_WORDS.get(cells[self.status].strip().lower(), "")
        if not status:
            raise ResultsError(
                f"status {cells[self.status]!r} is not keep, discard or crash (nor another"
                " tool's word for one: kept, baseline, revert, error, failed...)."
            )
        commit = cells[self.commit].strip()
        if not commit:
            raise ResultsError("the commit column is empty.")
        metric = _number(cells[self.metric], "metric")
        if (status == "crash" and metric == 0.0) or metric in SENTINELS:
            metric = None  # Karpathy's files write 0.000000 for a crash, others -999
        memory = _number(cells[self.memory], "memory_gb") if self.memory >= 0 else None
        extra = {self.header[i]: cells[i] for i in self.extra if i < len(cells)}
        return Experiment(
            number=number,
            commit=commit,
            status=status,  # type: ignore[arg-type]
            metric=metric,
            memory_gb=memory or 0.0,
            description=cells[self.description] if self.description >= 0 else "",
            extra=extra,
        )


def _number(cell: str, what: str) -> float | None:
    try:
        value = float(cell)  # the usual case; float() ignores surrounding blanks as strip() does
    except ValueError:
        return _number_or_na(cell, what)
    return value if math.isfinite(value) else None


def _number_or_na(cell: str, what: str) -> float | None:
    cell = cell.strip()
    if cell.upper() in ("NA", "NAN", "", "-", "N/A", "NONE"):
        return None
    try:
        value = float(cell)
    except ValueError:
        raise ResultsError(f"{what} {cell!r} is not a number.") from None
    return value if math.isfinite(value) else None
