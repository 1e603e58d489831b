"""`results.tsv`: the seed's five columns, written byte for byte; read from any tool's file.

Readers find columns by header name, so files with Karpathy's `val_bpb` header, `0.000000` for a
crash, or extra columns load too (see shared/samples/).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .experiment import Experiment

RESULTS_FILE = "results.tsv"
HEADER = "commit\tmetric\tmemory_gb\tstatus\tdescription\n"
STATUSES = ("keep", "discard", "crash")


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


def append(path: Path, exp: Experiment) -> None:
    """Append one row durably; a crash mid-write leaves at most a partial last line."""
    line = format_row(exp).encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read(path: Path, metric_name: str | None = None, strict: bool = True) -> list[Experiment]:
    """Rows as experiments numbered from 0. Non-strict skips broken rows instead of raising."""
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines and strict:
        # A last line without newline is a write cut short: it was never a decided row.
        lines.pop()
    if not lines:
        return []
    header = lines[0].rstrip("\r").split("\t")
    columns = _columns(header, metric_name, path)
    rows: list[Experiment] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            rows.append(_row(line.rstrip("\r").split("\t"), header, columns, len(rows)))
        except ResultsError as exc:
            if strict:
                raise ResultsError(
                    f"{path} line {lineno}: {exc} Fix or delete that line, then try again."
                ) from None
    return rows


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


def _row(cells: list[str], header: list[str], columns: dict[str, int], number: int) -> Experiment:
    if len(cells) < len(header):
        if columns["description"] == len(header) - 1 and len(cells) == len(header) - 1:
            cells = [*cells, ""]
        else:
            raise ResultsError(f"expected {len(header)} tab-separated columns, found {len(cells)}.")
    elif len(cells) > len(header) and columns["description"] == len(header) - 1:
        # Tabs inside a hand-edited description: fold them back into the last column.
        cells = [*cells[: len(header) - 1], " ".join(cells[len(header) - 1 :])]
    status = cells[columns["status"]].strip().lower()
    if status not in STATUSES:
        raise ResultsError(f"status {cells[columns['status']]!r} is not keep, discard or crash.")
    commit = cells[columns["commit"]].strip()
    if not commit:
        raise ResultsError("the commit column is empty.")
    metric = _number(cells[columns["metric"]], "metric")
    if status == "crash" and metric == 0.0:
        metric = None  # Karpathy's files write 0.000000 for a crash
    memory = _number(cells[columns["memory"]], "memory_gb") if columns["memory"] >= 0 else None
    known = set(columns.values())
    extra = {header[i]: cells[i] for i in range(len(header)) if i not in known and i < len(cells)}
    return Experiment(
        number=number,
        commit=commit,
        status=status,  # type: ignore[arg-type]
        metric=metric,
        memory_gb=memory or 0.0,
        description=cells[columns["description"]] if columns["description"] >= 0 else "",
        extra=extra,
    )


def _number(cell: str, what: str) -> float | None:
    cell = cell.strip()
    if cell.upper() in ("NA", "NAN", "", "-", "N/A", "NONE"):
        return None
    try:
        value = float(cell)
    except ValueError:
        raise ResultsError(f"{what} {cell!r} is not a number.") from None
    return value if math.isfinite(value) else None
