"""The pure stop rules: when the loop stops by itself, and when a run is pruned early.

No I/O here: the loop supplies the session's records, the elapsed time and the curves; it acts
on the reason returned. With no `[stop]` setting the loop never stops by itself.
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
from collections.abc import Sequence

from .config import CONFIG_FILE, Config, ConfigError, Decision, Direction, Stop
from .experiment import Experiment
from .policy import gain

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms])")
_UNIT_S = {"h": 3600.0, "m": 60.0, "s": 1.0}

# A point of a learning curve: (step, value).
Point = tuple[int, float]


def parse_duration(text: str) -> float:
    """'8h', '90m', '3600s', '1h30m' or a bare number of seconds -> seconds (ValueError if not)."""
    s = text.strip().lower().replace(" ", "")
    if re.fullmatch(r"\d+(?:\.\d+)?", s):
        return float(s)
    if not s or _DURATION.sub("", s):
        raise ValueError(text)
    return sum(float(n) * _UNIT_S[u] for n, u in _DURATION.findall(s))


def check_config(config: Config, source: str = CONFIG_FILE) -> None:
    """The `[stop]`, `[notify]` and pruning settings; each error names the setting and the fix."""
    st, d = config.stop, config.decision
    if st.target is not None and not math.isfinite(st.target):
        raise ConfigError(f"{source}: stop.target is {st.target}; write a finite number.")
    for key in ("max_experiments", "plateau"):
        value = getattr(st, key)
        if value is not None and value < 1:
            raise ConfigError(
                f"{source}: stop.{key} is {value}; it must be 1 or more (remove it for no limit)."
            )
    if st.wall_clock is not None:
        try:
            seconds = parse_duration(st.wall_clock)
        except ValueError:
            raise ConfigError(
                f"{source}: stop.wall_clock is {st.wall_clock!r}, not a duration. Write hours,"
                " minutes or seconds, e.g. '8h', '90m' or '1h30m'."
            ) from None
        if seconds <= 0:
            raise ConfigError(f"{source}: stop.wall_clock must be more than 0, e.g. '8h'.")
    cost = st.agent_cost_usd
    if cost is not None and not (cost > 0 and math.isfinite(cost)):
        raise ConfigError(
            f"{source}: stop.agent_cost_usd is {cost:g}; it must be a positive number of US"
            " dollars, e.g. 20.0."
        )
    if not (0 < d.prune_after <= 1):
        raise ConfigError(
            f"{source}: decision.prune_after is {d.prune_after:g}; it is a fraction of the best"
            " run's steps, more than 0 and at most 1, e.g. 0.5."
        )
    if not (d.prune_margin >= 0 and math.isfinite(d.prune_margin)):
        raise ConfigError(
            f"{source}: decision.prune_margin is {d.prune_margin:g}; it must be 0 or more (how"
            " much worse than the best run at the same step a run may be)."
        )
    if d.prune and not config.metric.curve:
        raise ConfigError(
            f"{source}: decision.prune is on but metric.curve is not set, so there is no curve"
            r" to compare. Set metric.curve, e.g. '^step (\d+).*val_loss:? ([-+0-9.eE]+)', or"
            " turn prune off."
        )
    if config.notify.webhook is not None:
        from .notify import check_url

        problem = check_url(config.notify.webhook)
        if problem:
            raise ConfigError(f"{source}: notify.webhook {problem}")


def stop_reason(
    stop: Stop, direction: Direction, history: Sequence[Experiment], elapsed_s: float
) -> str | None:
    """Why the loop stops now (after the experiment just recorded), or None to go on.
    `history` is the session's records, the baseline (#0) first."""
    # Asked after every experiment of a session that may hold 100,000: each condition looks
    # back only as far as it needs (the last keep), the whole history only for the cost.
    if stop.target is not None:
        keeps = (e for e in reversed(history) if e.status == "keep" and e.metric is not None)
        best = next(keeps, None)
        if best and best.metric is not None and gain(best.metric, stop.target, direction) >= 0:
            return (
                f"the target was reached: #{best.number} has {best.metric:.6g}"
                f" (stop.target {stop.target:g})"
            )
    runs = len(history) - 1
    if stop.max_experiments is not None and runs >= stop.max_experiments:
        return f"{runs} experiments were run (stop.max_experiments {stop.max_experiments})"
    if stop.plateau is not None:
        without = 0
        # Newest first, the baseline (#0, the first record) no experiment.
        for e in itertools.islice(reversed(history), max(len(history) - 1, 0)):
            if e.status == "keep":
                break
            without += 1
        if without >= stop.plateau:
            return f"{without} experiments in a row without a keep (stop.plateau {stop.plateau})"
    if stop.wall_clock is not None and elapsed_s >= parse_duration(stop.wall_clock):
        return f"the loop ran {_hours(elapsed_s)} (stop.wall_clock {stop.wall_clock})"
    if stop.agent_cost_usd is not None:
        spent = sum(e.cost_usd or 0.0 for e in history)
        if spent >= stop.agent_cost_usd:
            return (
                f"the agent's calls cost ${spent:.2f} (stop.agent_cost_usd {stop.agent_cost_usd:g})"
            )
    return None


def _hours(seconds: float) -> str:
    h, rest = divmod(int(seconds), 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def value_at(curve: Sequence[Point], step: int) -> float | None:
    """The curve's value at `step`, linear between its points; None outside its steps."""
    if not curve or step < curve[0][0] or step > curve[-1][0]:
        return None
    i = bisect.bisect_left(curve, (step, -math.inf))
    s1, v1 = curve[i]
    if s1 == step or i == 0:
        return v1
    s0, v0 = curve[i - 1]
    return v0 + (v1 - v0) * (step - s0) / (s1 - s0)


def prune_reason(
    point: Point,
    best_curve: Sequence[Point],
    decision: Decision,
    direction: Direction,
    noise_std: float = 0.0,
) -> str | None:
    """Why a run whose curve reached `point` is stopped now, or None. It is compared with the
    best run's curve at the same step, only from `prune_after` of the best run's steps on;
    it must be worse by more than the margin plus twice the noise."""
    if not decision.prune or not best_curve:
        return None
    step, value = point
    total = best_curve[-1][0]
    if total <= 0 or step < decision.prune_after * total:
        return None
    ref = value_at(best_curve, step)
    if ref is None or not math.isfinite(value):
        return None if ref is None else f"pruned at step {step} of {total}"
    if -gain(value, ref, direction) > decision.prune_margin + 2.0 * noise_std:
        return f"pruned at step {step} of {total}"
    return None
