"""Early stopping on a synthetic curve workload: the run time `[decision] prune` saves, and how
many pruned runs would have won had they run to the end (the bar: none here).

200 runs of 1,000 steps, in order, each one's loss `f + (4 - f) * exp(-step / 150)` plus
Gaussian noise (sigma 0.01) per point, its final value f drawn from [1, 2]: curves that do not
cross, as with a learning rate that is simply worse. Each run is followed point by point
against the best run so far with `stops.prune_reason` (prune_after 0.5, margin 0.03, the
noise's sigma given as the baseline noise), exactly as the loop's follower asks it.
"""

from __future__ import annotations

import math
import random

from common import Table

from autoresearch.config import Decision
from autoresearch.stops import Point, prune_reason

RUNS, STEPS, EVERY, SIGMA = 200, 1000, 10, 0.01


def curve(final: float, rng: random.Random) -> list[Point]:
    return [
        (s, final + (4 - final) * math.exp(-s / 150) + rng.gauss(0, SIGMA))
        for s in range(0, STEPS + 1, EVERY)
    ]


def run(table: Table) -> dict[str, float]:
    rng = random.Random(16)
    decision = Decision(prune=True, prune_after=0.5, prune_margin=0.03)
    best: list[Point] = []
    full = spent = 0.0
    pruned = won = 0
    for _ in range(RUNS):
        points = curve(rng.uniform(1.0, 2.0), rng)
        stopped_at = None
        for point in points:
            if prune_reason(point, best, decision, "lower", SIGMA):
                stopped_at = point[0]
                break
        full += STEPS
        spent += STEPS if stopped_at is None else stopped_at
        if stopped_at is not None:
            pruned += 1
            # Would it have won? Its real end against the best's end, past the noise.
            won += points[-1][1] < best[-1][1] - 2 * SIGMA
        elif not best or points[-1][1] < best[-1][1]:
            best = points
    saved = 1 - spent / full
    bench = "pruning"
    table.add(bench, f"run time saved over {RUNS} runs", f"{saved:.0%}", f"{pruned} pruned")
    table.add(bench, "pruned runs that would have won", str(won), "must be 0")
    print(
        f"pruning: {pruned}/{RUNS} runs pruned, {saved:.0%} of run time saved, {won} would have won"
    )
    return {"saved": saved, "pruned": pruned, "won": won}
