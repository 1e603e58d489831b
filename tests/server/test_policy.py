"""The pure decision policy."""

from __future__ import annotations

from autoresearch.config import Decision
from autoresearch.policy import judge, threshold


def test_direction_decides_what_better_means() -> None:
    assert judge(0.9, 1.0, "lower", Decision()).status == "keep"
    assert judge(0.9, 1.0, "higher", Decision()).status == "discard"
    assert judge(1.1, 1.0, "higher", Decision()).status == "keep"


def test_a_crash_has_no_metric() -> None:
    assert judge(None, 1.0, "lower", Decision()).status == "crash"


def test_min_improvement_and_noise_set_the_bar() -> None:
    assert threshold(Decision(min_improvement=0.01), 0.02) == 0.04
    verdict = judge(0.995, 1.0, "lower", Decision(min_improvement=0.01))
    assert verdict.status == "discard" and "under the bar" in verdict.reason


def test_equal_metric_keeps_only_simpler_code() -> None:
    assert judge(1.0, 1.0, "lower", Decision(), lines_delta=-3).status == "keep"
    assert judge(1.0, 1.0, "lower", Decision(), lines_delta=2).status == "discard"


def test_near_threshold_wins_ask_for_confirmation() -> None:
    d = Decision(min_improvement=0.01, confirmation_runs=2)
    assert judge(0.985, 1.0, "lower", d).confirm
    assert not judge(0.985, 1.0, "lower", d, confirmed=True).confirm
    assert not judge(0.9, 1.0, "lower", d).confirm
