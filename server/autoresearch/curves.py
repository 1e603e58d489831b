"""Learning curves: `[metric] curve` (two groups, step and value) read live from a run's log.

A run's points go to `.autoresearch/curves/<tag>-<n>.tsv` (one `step<TAB>value` a line), not to
results.tsv. The follower reads only the bytes appended since its last call and splits lines on
"\\n" and "\\r" (tqdm redraws its line with carriage returns); memory stays bounded by the
longest line it keeps (MAX_LINE) and the points of one call.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

from . import confine
from .stops import Point

CURVES_DIR = Path(".autoresearch") / "curves"
# A line longer than this is cut: a progress bar without newlines must not grow the buffer.
MAX_LINE = 64 * 1024
# Points read back for a chart or a comparison; a longer curve is thinned evenly.
MAX_POINTS = 20_000
# Bytes read per poll: a fast printer is caught up over a few polls, memory stays bounded.
CHUNK = 4 * 1024 * 1024
_SPLIT = re.compile(rb"\r\n|\r|\n")


def curve_rel(tag: str, number: int) -> str:
    return str(CURVES_DIR / f"{tag}-{number}.tsv")


def parse_lines(pattern: re.Pattern[bytes], lines: list[bytes]) -> list[Point]:
    """The (step, value) of every line the pattern matches; a repeated step keeps its last
    value (a tqdm line is redrawn at the same step)."""
    points: list[Point] = []
    for line in lines:
        found = pattern.search(line)
        if not found:
            continue
        try:
            step, value = int(float(found.group(1))), float(found.group(2))
        except (TypeError, ValueError):
            continue
        if points and points[-1][0] == step:
            points[-1] = (step, value)
        elif not points or step > points[-1][0]:
            points.append((step, value))
    return points


class Follower:
    """Follows one run's log as it grows and appends the curve's new points to its file."""

    def __init__(self, root: Path, log: Path, pattern: str, tag: str, number: int | None) -> None:
        self.root = root
        self.log = log
        self.pattern = re.compile(pattern.encode())
        self.offset = 0
        self.partial = b""
        self.last: Point | None = None
        self.rel = curve_rel(tag, number) if number is not None else None
        if self.rel:
            path = root / self.rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if confine.link_in_path(root, self.rel):
                raise confine.ConfinementError(f"{self.rel} lies under a symbolic link")
            path.unlink(missing_ok=True)  # a re-run starts its curve again

    def poll(self, final: bool = False) -> list[Point]:
        """New points since the last call (at most CHUNK bytes read); `final`: the log is
        complete: all of the rest is read, its last line too."""
        points = self._poll_chunk(final)
        while final and self.offset < _size(self.log):
            points += self._poll_chunk(final)
        return points

    def _poll_chunk(self, final: bool) -> list[Point]:
        try:
            with open(self.log, "rb") as f:
                f.seek(self.offset)
                chunk = f.read(CHUNK)
                self.offset = f.tell()
        except OSError:
            return []
        parts = _SPLIT.split(self.partial + chunk)
        # The last line counts once the log is complete and read to its end, not before.
        done = final and self.offset >= _size(self.log)
        self.partial = b"" if done else parts.pop()[:MAX_LINE]
        points = parse_lines(self.pattern, [p[:MAX_LINE] for p in parts])
        if self.last is not None:
            points = [p for p in points if p[0] > self.last[0]] or (
                [points[-1]] if points and points[-1][0] == self.last[0] else []
            )
        if points:
            self.last = points[-1]
            self._store(points)
        return points

    def _store(self, points: list[Point]) -> None:
        if not self.rel:
            return
        text = "".join(f"{s}\t{v!r}\n" for s, v in points)
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW
        fd = os.open(self.root / self.rel, flags, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)


def read(root: Path, tag: str, number: int) -> list[Point]:
    """A stored curve, thinned evenly to MAX_POINTS; [] when there is none."""
    rel = curve_rel(tag, number)
    if confine.link_in_path(root, rel):
        return []
    points: list[Point] = []
    try:
        with open(root / rel, encoding="utf-8", errors="replace") as f:
            for line in f:
                step, _, value = line.partition("\t")
                try:
                    point = (int(step), float(value))
                except ValueError:
                    continue
                if not points or point[0] > points[-1][0]:
                    points.append(point)
                elif point[0] == points[-1][0]:
                    points[-1] = point
    except OSError:
        return []
    return thin(points)


def thin(points: list[Point], limit: int = MAX_POINTS) -> list[Point]:
    if len(points) <= limit:
        return points
    every = math.ceil(len(points) / limit)
    kept = points[::every]
    return kept if kept[-1] == points[-1] else [*kept, points[-1]]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
