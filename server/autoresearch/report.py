"""`autoresearch report`: progress.png and the top improvements of a session.

The chart is drawn as karpathy/autoresearch's analysis notebook draws it: every experiment a
dot (discards faint, keeps highlighted), the running best as a step line, each keep labelled
with its description. It is drawn with Pillow (one wheel, no further dependencies, its own
font) rather than matplotlib, which would bring numpy and half a dozen packages for one chart.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from .experiment import Experiment
from .results_tsv import format_metric
from .session_records import Tally, tally_of

WIDTH, HEIGHT = 1600, 800
LEFT, RIGHT, TOP, BOTTOM = 110, 190, 70, 80
KEEP, DISCARD, CRASH, BEST, INK = "#2ca02c", "#bbbbbb", "#d62728", "#2ca02c", "#222222"


class Improvement(msgspec.Struct):
    number: int
    metric: float
    # Better than the best before it by this much (positive is better in either direction).
    gain: float
    description: str


def improvements(experiments: list[Experiment], direction: str) -> list[Improvement]:
    """Each keep after the first, with how much it gained on the best before it (the session's
    Tally as it stood then: the branch's last keep); the biggest first."""
    out: list[Improvement] = []
    running = Tally(tag="")
    for exp in experiments:
        prev = running.best
        running.add_experiment(exp)
        if exp.status == "keep" and exp.metric is not None and prev is not None:
            gain = prev - exp.metric if direction == "lower" else exp.metric - prev
            out.append(Improvement(exp.number, exp.metric, gain, exp.description))
    return sorted(out, key=lambda i: -i.gain)


def progress_line(tally: Tally, metric: str) -> str:
    """`val_bpb: baseline 1.02 -> best 0.98 (#7): -0.04 (-3.92 %)`; empty before a baseline.
    The session's own tally says both, so this line agrees with the tree and `status`."""
    if tally.baseline is None or tally.best is None or tally.best_number is None:
        return ""
    base, value = tally.baseline, tally.best
    change = f" ({(value - base) / abs(base) * 100:+.2f} %)" if base else ""
    return (
        f"{metric}: baseline {format_metric(base)} -> best {format_metric(value)}"
        f" (#{tally.best_number}): {value - base:+.6g}{change}"
    )


def text(experiments: list[Experiment], direction: str, metric: str, top: int = 10) -> str:
    found = improvements(experiments, direction)
    lines = [f"{len(experiments)} experiments, {len(found)} improvements"]
    tag = experiments[0].tag if experiments else ""
    progress = progress_line(tally_of(tag, experiments), metric)
    if progress:
        lines.append(progress)
    if found:
        lines.append(f"top improvements ({direction} {metric} is better):")
        for i in found[:top]:
            lines.append(
                f"  #{i.number:<4} {format_metric(i.metric):>12}  {i.gain:+.6g}  {i.description}"
            )
    return "\n".join(lines)


def draw(experiments: list[Experiment], direction: str, metric: str, path: Path) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    pen = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=15)
    small = ImageFont.load_default(size=12)
    title = ImageFont.load_default(size=20)
    measured = [e for e in experiments if e.metric is not None]
    keeps = [e for e in measured if e.status == "keep"]
    tally = tally_of(experiments[0].tag if experiments else "", experiments)
    pen.text(
        (LEFT, 20),
        f"Autoresearch progress: {tally.total} experiments, {tally.keep} kept improvements",
        fill=INK,
        font=title,
    )
    if not measured:
        pen.text((LEFT, HEIGHT // 2), "no measured experiment yet", fill=INK, font=font)
        image.save(path)
        return path
    values = [e.metric or 0.0 for e in measured]
    # The notebook's focus: from the best to a little past the baseline; worse runs are drawn
    # at the top edge instead of squashing the interesting part of the chart.
    base = keeps[0].metric if keeps and keeps[0].metric is not None else values[0]
    lo, hi = min([*values, base]), base
    if direction == "higher":
        lo, hi = base, max([*values, base])
    pad = (hi - lo) * 0.15 or abs(hi) * 0.01 or 1.0
    lo, hi = lo - pad, hi + pad
    last = max(e.number for e in experiments) or 1
    x0, x1, y0, y1 = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM

    def x(n: float) -> float:
        return x0 + (x1 - x0) * n / last

    def y(v: float) -> float:
        return y1 - (y1 - y0) * (min(max(v, lo), hi) - lo) / (hi - lo)

    pen.rectangle((x0, y0, x1, y1), outline=INK)
    for i in range(6):
        v = lo + (hi - lo) * i / 5
        pen.line((x0 - 5, y(v), x0, y(v)), fill=INK)
        pen.line((x0 + 1, y(v), x1 - 1, y(v)), fill="#eeeeee")
        pen.text((x0 - 8, y(v)), f"{v:.4g}", fill=INK, font=small, anchor="rm")
    x0, x1 = x0 + 12, x1 - 12  # the first and last dots clear the frame
    for n in range(0, last + 1, max(1, -(-last // 10))):
        pen.line((x(n), y1, x(n), y1 + 5), fill=INK)
        pen.text((x(n), y1 + 8), str(n), fill=INK, font=small, anchor="mt")
    pen.text(((x0 + x1) / 2, HEIGHT - 30), "Experiment #", fill=INK, font=font, anchor="mm")
    pen.text((15, y0 - 25), f"{metric} ({direction} is better)", fill=INK, font=font)
    for e in experiments:
        if e.status == "crash" or e.metric is None:
            cx, cy = x(e.number), y0 + 6
            pen.line((cx - 4, cy - 4, cx + 4, cy + 4), fill=CRASH, width=2)
            pen.line((cx - 4, cy + 4, cx + 4, cy - 4), fill=CRASH, width=2)
        elif e.status != "keep":
            cx, cy = x(e.number), y(e.metric)
            pen.ellipse((cx - 4, cy - 4, cx + 4, cy + 4), fill=DISCARD)
    running = Tally(tag="")  # its best after each experiment: where the branch sat
    points: list[tuple[float, float]] = []
    for e in experiments:
        running.add_experiment(e)
        if running.best is not None:
            if points:
                points.append((x(e.number), points[-1][1]))
            points.append((x(e.number), y(running.best)))
    if len(points) > 1:
        pen.line(points, fill=BEST, width=2)
    for e in keeps:
        cx, cy = x(e.number), y(e.metric or 0.0)
        pen.ellipse((cx - 7, cy - 7, cx + 7, cy + 7), fill=KEEP, outline="black", width=2)
        _label(image, cx + 6, cy - 8, e.description[:48], small)
    image.save(path)
    return path


def _label(image: object, x: float, y: float, words: str, font: object) -> None:
    """A keep's description at 30 degrees, as the notebook writes it."""
    from PIL import Image, ImageDraw

    box = ImageDraw.Draw(Image.new("L", (1, 1))).textbbox((0, 0), words, font=font)  # type: ignore[arg-type]
    w, h = box[2] + 4, box[3] + 4
    patch = Image.new("RGBA", (w, h), (255, 255, 255, 0))
    ImageDraw.Draw(patch).text((2, 0), words, fill="#555555", font=font)  # type: ignore[arg-type]
    turned = patch.rotate(30, expand=True, resample=Image.Resampling.BICUBIC)
    target = image  # type: ignore[assignment]
    target.paste(turned, (int(x), int(y) - turned.height + h), turned)  # type: ignore[attr-defined]
