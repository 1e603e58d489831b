"""The pure stop rules: each `[stop]` condition, the pruning decision and their config errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import make_config

from autoresearch import config as cfg
from autoresearch.config import Decision, Stop
from autoresearch.experiment import Experiment
from autoresearch.stops import parse_duration, prune_reason, stop_reason, value_at


def exp(n: int, status: str, metric: float | None = None, cost: float | None = None) -> Experiment:
    return Experiment(number=n, commit=f"{n:040x}", status=status, metric=metric, cost_usd=cost)  # type: ignore[arg-type]


BASE = exp(0, "keep", 1.0)


def test_no_stop_setting_never_stops() -> None:
    history = [BASE, *[exp(i, "crash") for i in range(1, 500)]]
    assert stop_reason(Stop(), "lower", history, elapsed_s=10**7) is None


def test_target_stops_once_the_best_reaches_it_in_the_metrics_direction() -> None:
    history = [BASE, exp(1, "keep", 0.6), exp(2, "discard", 0.4)]
    assert stop_reason(Stop(target=0.5), "lower", history, 0) is None  # a discard is no best
    history.append(exp(3, "keep", 0.5))
    why = stop_reason(Stop(target=0.5), "lower", history, 0)
    assert why and "target" in why and "#3" in why
    assert stop_reason(Stop(target=2.0), "higher", history, 0) is None
    assert stop_reason(Stop(target=0.4), "higher", history, 0)


def test_max_experiments_counts_the_experiments_after_the_baseline() -> None:
    history = [BASE, exp(1, "discard", 2.0), exp(2, "crash")]
    assert stop_reason(Stop(max_experiments=3), "lower", history, 0) is None
    why = stop_reason(Stop(max_experiments=2), "lower", history, 0)
    assert why == "2 experiments were run (stop.max_experiments 2)"


def test_plateau_counts_experiments_in_a_row_without_a_keep() -> None:
    history = [BASE, exp(1, "discard", 2.0), exp(2, "keep", 0.9), exp(3, "crash")]
    assert stop_reason(Stop(plateau=2), "lower", history, 0) is None
    history.append(exp(4, "discard", 1.0))
    assert "2 experiments in a row without a keep" in (
        stop_reason(Stop(plateau=2), "lower", history, 0) or ""
    )


def test_wall_clock_stops_after_the_duration() -> None:
    assert stop_reason(Stop(wall_clock="1h30m"), "lower", [BASE], 5399) is None
    assert "stop.wall_clock 1h30m" in (
        stop_reason(Stop(wall_clock="1h30m"), "lower", [BASE], 5400) or ""
    )


def test_agent_cost_sums_what_the_agent_reported() -> None:
    history = [BASE, exp(1, "discard", 2.0, cost=1.5), exp(2, "discard", 2.0)]
    assert stop_reason(Stop(agent_cost_usd=2.0), "lower", history, 0) is None
    history.append(exp(3, "keep", 0.5, cost=0.75))
    assert "$2.25" in (stop_reason(Stop(agent_cost_usd=2.0), "lower", history, 0) or "")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("8h", 28800), ("90m", 5400), ("3600s", 3600), ("1h30m", 5400), ("45", 45)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


BEST = [(0, 4.0), (100, 3.0), (200, 2.5), (400, 2.0)]
PRUNE = Decision(prune=True, prune_after=0.5, prune_margin=0.1)


def test_value_at_interpolates_between_points() -> None:
    assert value_at(BEST, 300) == pytest.approx(2.25)
    assert value_at(BEST, 100) == 3.0
    assert value_at(BEST, 500) is None


def test_a_run_behind_the_best_past_the_fraction_is_pruned() -> None:
    assert prune_reason((200, 2.7), BEST, PRUNE, "lower") == "pruned at step 200 of 400"


def test_no_prune_before_the_fraction_within_the_margin_or_the_noise() -> None:
    assert prune_reason((150, 9.0), BEST, PRUNE, "lower") is None  # before half the steps
    assert prune_reason((200, 2.59), BEST, PRUNE, "lower") is None  # within the margin
    assert prune_reason((200, 2.7), BEST, PRUNE, "lower", noise_std=0.1) is None  # noise
    assert prune_reason((200, 2.3), BEST, PRUNE, "lower") is None  # ahead
    assert prune_reason((200, 2.7), BEST, Decision(prune=False), "lower") is None
    assert prune_reason((200, 2.7), [], PRUNE, "lower") is None  # the best has no curve


def test_higher_is_better_prunes_a_run_that_is_lower() -> None:
    acc = [(0, 0.1), (10, 0.5), (20, 0.8)]
    assert prune_reason((10, 0.3), acc, PRUNE, "higher") == "pruned at step 10 of 20"
    assert prune_reason((10, 0.7), acc, PRUNE, "higher") is None


def test_a_diverged_run_is_pruned() -> None:
    assert prune_reason((300, float("nan")), BEST, PRUNE, "lower") == "pruned at step 300 of 400"


@pytest.mark.parametrize(
    ("overrides", "names"),
    [
        ({"stop__wall_clock": "8 hours"}, ["stop.wall_clock", "'8h'"]),
        ({"stop__max_experiments": 0}, ["stop.max_experiments", "1 or more"]),
        ({"stop__plateau": -2}, ["stop.plateau", "1 or more"]),
        ({"stop__agent_cost_usd": -1.0}, ["stop.agent_cost_usd", "positive"]),
        ({"stop__target": float("nan")}, ["stop.target", "finite"]),
        ({"decision__prune": True}, ["decision.prune", "metric.curve"]),
        ({"decision__prune_after": 1.5}, ["decision.prune_after", "0.5"]),
        ({"decision__prune_margin": -0.1}, ["decision.prune_margin", "0 or more"]),
        ({"metric__curve": r"step (\d+)"}, ["metric.curve", "exactly two"]),
        ({"notify__webhook": "file:///etc/passwd"}, ["notify.webhook", "https://"]),
        ({"notify__webhook": "hooks.slack.com/T0/B0/secret"}, ["notify.webhook", "scheme"]),
        ({"stop__max_experimets": 3}, ["stop.max_experimets", "typo"]),
    ],
)
def test_bad_settings_name_the_field_and_the_fix(overrides: dict, names: list[str]) -> None:
    with pytest.raises(cfg.ConfigError) as err:
        make_config(**overrides)
    for name in names:
        assert name in str(err.value)
    assert "secret" not in str(err.value)  # a hook URL's path is never repeated


def test_the_new_sections_round_trip_through_the_toml() -> None:
    config = make_config(
        metric__curve=r"^step (\d+).*val_loss:? ([-+0-9.eE]+)",
        decision__prune=True,
        stop__wall_clock="8h",
        stop__plateau=20,
        notify__webhook="https://hooks.example.com/T000/B000/secret",
    )
    again = cfg.parse(cfg.dumps(config))
    assert again == config


def test_the_pruning_bench_saves_time_and_prunes_no_winner() -> None:
    sys.path.insert(0, str(Path(__file__).parents[1] / "bench"))
    import pruning
    from common import Table

    figures = pruning.run(Table())
    assert figures["won"] == 0 and figures["saved"] > 0.3
