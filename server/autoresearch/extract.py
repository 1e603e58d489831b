"""Metric and resource values from run.log.

A regex's last match wins, found by scanning the file backwards in chunks, so the cost depends
on how far from the end the value was printed, not on the size of the log.
"""

from __future__ import annotations

import math
import re
from collections import deque
from pathlib import Path

from . import procs

# Windows read backwards from the end: the first is small (the metric is usually printed last,
# and a regex over a whole MiB costs milliseconds), then they double up to CHUNK.
FIRST_CHUNK = 1 << 14
CHUNK = 1 << 20
MAX_LINE = 8 << 20  # a longer line is searched in pieces rather than held whole
NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)", re.I)


class ExtractionError(ValueError):
    """The metric is missing or unusable; the message says which and why."""


def last_match(path: Path, pattern: re.Pattern[bytes]) -> bytes | None:
    """The group of the last match of `pattern` in the file, reading from the end."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    with open(path, "rb") as f:
        end = size
        window = min(FIRST_CHUNK, CHUNK)
        carry = b""  # a partial first line of the later window, joined to this one
        while end > 0:
            start = max(0, end - window)
            window = min(window * 2, CHUNK)
            f.seek(start)
            block = f.read(end - start) + carry
            newline = block.find(b"\n")
            if start > 0 and newline < 0 and len(block) < MAX_LINE:
                carry, end = block, start  # one long line: keep reading it backwards
                continue
            # Only search whole lines: the part before the first newline may continue backwards.
            cut = newline + 1 if start > 0 else 0
            last = deque(pattern.finditer(block, cut), maxlen=1)
            if last:
                return last[0].group(1)
            carry = block[:cut]
            end = start
    return None


def parse_number(raw: str, what: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ExtractionError(f"{what} is not a number: {raw!r}") from None
    if not math.isfinite(value):
        raise ExtractionError(f"{what} is {raw.strip()} (not finite): the run diverged")
    return value


def by_pattern(path: Path, pattern: str) -> float | None:
    """The metric from a one-group regex, or None when it never matched."""
    raw = last_match(path, re.compile(pattern.encode(), re.MULTILINE))
    if raw is None:
        return None
    return parse_number(raw.decode(errors="replace"), "the metric")


def by_command(command: str, cwd: Path, timeout: float = 60.0) -> float | None:
    """The seed's way: a shell command (e.g. `grep "^val_bpb:" run.log`); its last number wins."""
    try:
        done = procs.run_short(command, cwd, timeout)
    except TimeoutError:
        raise ExtractionError(f"the extraction command ran over {timeout:g}s: {command}") from None
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if not lines:
        return None
    numbers = NUMBER.findall(lines[-1])
    if not numbers:
        raise ExtractionError(f"the extraction command printed no number: {lines[-1][:200]!r}")
    return parse_number(numbers[-1], "the metric")


UNIT_TO_GB = {"GB": 1.0, "GiB": 1.073741824, "MB": 1e-3, "MiB": 1.048576e-3}


def memory_gb(path: Path, pattern: str, unit: str) -> float | None:
    raw = last_match(path, re.compile(pattern.encode(), re.MULTILINE))
    if raw is None:
        return None
    try:
        return float(raw) * UNIT_TO_GB[unit]
    except ValueError:
        return None
