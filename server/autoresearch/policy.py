"""The pure decision: keep, discard or crash, given a metric and the best so far.

No I/O here; the loop supplies numbers and acts on the verdict.
"""

from __future__ import annotations

import statistics

import msgspec

from .config import Decision, Direction
from .experiment import Status

# Metrics closer than this (relative) are equal, so float noise in the last digit is no win.
EQUAL_REL = 1e-9


class Verdict(msgspec.Struct):
    status: Status
    reason: str
    # The win is close to the threshold: re-run before believing it.
    confirm: bool = False


def gain(metric: float, best: float, direction: Direction) -> float:
    """How much better `metric` is than `best`; positive is better in either direction."""
    return best - metric if direction == "lower" else metric - best


def noise(samples: list[float]) -> float:
    return statistics.stdev(samples) if len(samples) >= 2 else 0.0


def threshold(decision: Decision, noise_std: float) -> float:
    """The least gain that counts: the configured minimum, or 2 sigma of baseline noise."""
    return max(decision.min_improvement, 2.0 * noise_std)


def judge(
    metric: float | None,
    best: float,
    direction: Direction,
    decision: Decision,
    noise_std: float = 0.0,
    lines_delta: int = 0,
    confirmed: bool = False,
) -> Verdict:
    """`lines_delta` is lines added minus lines removed by the experiment."""
    if metric is None:
        return Verdict("crash", "no metric")
    delta = gain(metric, best, direction)
    bar = threshold(decision, noise_std)
    equal = abs(delta) <= EQUAL_REL * max(abs(best), abs(metric), 1e-300)
    if equal:
        if lines_delta < 0:
            return Verdict("keep", f"equal metric with {-lines_delta} fewer lines")
        return Verdict("discard", "no improvement")
    if delta > bar:
        near = decision.confirmation_runs > 0 and delta <= 2 * max(bar, 1e-3 * abs(best))
        if near and not confirmed:
            return Verdict("keep", f"improved by {delta:.6g}, close to the bar", confirm=True)
        return Verdict("keep", f"improved by {delta:.6g}")
    if delta > 0:
        return Verdict("discard", f"improved by {delta:.6g}, under the bar of {bar:.6g}")
    return Verdict("discard", f"worse by {-delta:.6g}")


def confirmed_metric(first: float, reruns: list[float]) -> float:
    """The mean of all runs (one per seed) of a near-threshold win decides it."""
    return statistics.fmean([first, *reruns])


def standard_error(runs: list[float]) -> float:
    """The mean's own uncertainty: with the bar at two of them, a win one seed made is no win."""
    return noise(runs) / len(runs) ** 0.5 if len(runs) >= 2 else 0.0


def mean_sd(runs: list[float]) -> str:
    return f"mean {statistics.fmean(runs):.6g} ± {noise(runs):.2g} over {len(runs)} seeds"
