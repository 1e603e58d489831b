"""One committed edit: how it is run and judged (`Bench`), and the record it becomes (`Attempt`).

An experiment usually has one attempt; a crash retry or a guard rework makes another under the
same number, and the last one decides the record. The bench runs the command (again, when a win
is near the bar), checks the off-limits checksums around the run, and runs the guard on a keep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

from . import curves, policy, stops
from .config import Config, Direction
from .experiment import DiffStats, Experiment, GuardResult
from .measure import Measurement, link_live, log_path, measure, prepare_log
from .policy import Verdict
from .runner import Runner, RunResult, RunSpec
from .scope import Sentinel
from .triage import log_tail

# Every run's environment: which seed to use (0 first, 1, 2, ... for repeats and confirmation
# runs) and which experiment it measures.
SEED_ENV, RUN_ENV = "AUTORESEARCH_SEED", "AUTORESEARCH_RUN"


class Attempt(msgspec.Struct):
    sha: str
    description: str
    diff: DiffStats
    m: Measurement
    verdict: Verdict
    params: dict[str, float | str] = msgspec.field(default_factory=dict)
    confirmation: list[float] = msgspec.field(default_factory=list)
    guard: GuardResult | None = None
    guard_output: str = ""

    def record(
        self,
        number: int,
        parent: str,
        tag: str,
        events: list[str],
        agent_s: float,
        started: str,
        finished: str,
    ) -> Experiment:
        crashed = self.verdict.status == "crash"
        m = self.m
        return Experiment(
            number=number,
            commit=self.sha,
            parent=parent,
            status=self.verdict.status,
            metric=m.metric,
            memory_gb=m.memory_gb,
            description=self.description,
            tag=tag,
            reason=m.reason if crashed else self.verdict.reason,
            crash_kind=m.crash_kind if crashed else None,
            exit_code=m.result.exit_code,
            runtime_s=m.result.runtime_s,
            agent_s=agent_s,
            peak_rss_gb=m.result.peak_rss_gb,
            peak_gpu_gb=m.result.peak_gpu_gb,
            diff=self.diff,
            confirmation=self.confirmation,
            guard=self.guard,
            events=events,
            params=self.params,
            started=started,
            finished=finished,
        )


class Bench:
    """Runs and judges attempts for one session. `set_state` updates the loop's state (phase,
    timer); `say` is a progress line."""

    def __init__(
        self,
        root: Path,
        config: Config,
        runner: Runner,
        cancel: threading.Event,
        set_state: Callable[..., None],
        say: Callable[[str], None],
    ) -> None:
        self.root = root
        self.config = config
        self.runner = runner
        self.cancel = cancel
        self.set_state = set_state
        self.say = say
        self.tag = ""
        self.noise_std = 0.0
        self.sentinel: Sentinel | None = None
        # Where the command runs and what its environment adds: a parallel worker's worktree
        # and GPUs. Logs stay under the repository's .autoresearch/runs/ whichever runs it.
        self.cwd = root
        self.env: dict[str, str] = {}
        # New points of the running experiment's curve, for the editor: (number, points).
        self.on_curve: Callable[[int, list[stops.Point]], None] = lambda n, points: None

    def attempt(
        self,
        n: int,
        sha: str,
        description: str,
        diff: DiffStats,
        invalid: str,
        marker: str,
        diff_text: Callable[[], str],
        best: Experiment | None,
        events: list[str],
        parent: str,
    ) -> Attempt:
        """Run and judge a committed attempt. `invalid`: why it must not even run (an off-limits
        edit); an off-limits file changed behind git's back before or during the run voids it
        too. An environment failure comes back as `m.environment` for the loop to stop on."""
        if not invalid and (
            changed := self.off_limits_changed(parent, n, events, "before the run")
        ):
            invalid = f"off-limits file {', '.join(changed)} changed behind git's back"
        if invalid:
            m = Measurement(result=RunResult(exit_code=None, runtime_s=0.0), log_path="")
            m.crash_kind, m.reason = "invalid", f"{invalid} (reverted; not run)"
        else:
            m = self.measure(n, marker, diff=diff_text, best=best)
            if changed := self.off_limits_changed(parent, n, events, "during the run"):
                m.crash_kind, m.reason = "invalid", f"off-limits {', '.join(changed)} changed"
                m.metric, m.trivial, m.environment = None, False, False
        attempt = Attempt(sha, description, diff, m, Verdict("crash", m.reason))
        if m.pruned:
            attempt.verdict = Verdict("discard", m.reason)
        if m.crash_kind or m.pruned:
            return attempt
        attempt.verdict = self._verdict(n, attempt, best, diff.additions - diff.deletions, marker)
        if attempt.verdict.status == "keep" and self.config.run.guard:
            ok, attempt.guard_output = self.guard(n, marker)
            attempt.guard = "passed" if ok else "failed"
        return attempt

    def measure(
        self,
        n: int,
        marker: str,
        suffix: str = "",
        diff: Callable[[], str] | None = None,
        seed: int = 0,
        best: Experiment | None = None,
    ) -> Measurement:
        """Run once into the log. `seed`: 0 for an experiment's first run, 1, 2, ... for its
        repeats, so a script that seeds from AUTORESEARCH_SEED shows its noise and a lucky seed
        cannot win alone. The experiment's own run (no `suffix`) follows its curve, and with
        `best` given may be pruned: stopped and judged a discard."""
        command = self.config.run.command
        self.set_state(
            phase="running",
            current=n,
            message=f"running {command}",
            curve_step=None,
            curve_value=None,
        )
        started = time.monotonic()
        timeout = self.config.run.timeout
        path = log_path(self.root, self.tag, n, suffix)
        pattern = self.config.metric.curve
        # Re-runs (noise, confirmation) are not followed: the curve is the first run's.
        follower = (
            curves.Follower(self.root, path, pattern, self.tag, n)
            if pattern and not suffix
            else None
        )
        best_curve = self._best_curve(best) if follower else []
        # The run stops on the user's cancel or on a prune; the two are told apart after.
        stop_run = threading.Event()
        pruned = ""
        last_sent = [0.0]

        def tick(elapsed: float) -> None:
            nonlocal pruned
            if self.cancel.is_set():
                stop_run.set()
            now = time.monotonic()
            if now - started < 1.0 or now - last_sent[0] < 1.0:  # about once a second
                return
            last_sent[0] = now
            self.set_state(elapsed_s=round(elapsed, 1), timeout_s=timeout)
            if follower is None:
                return
            points = follower.poll()
            if points:
                self.on_curve(n, points)
                why = stops.prune_reason(
                    points[-1], best_curve, self.config.decision, self._direction, self.noise_std
                )
                if why and not pruned:
                    pruned = why
                    stop_run.set()

        env = {**self.env, SEED_ENV: str(seed), RUN_ENV: str(n)}
        if self.cwd != self.root:  # a parallel worker: run.log at the root is the latest run
            prepare_log(self.cwd, path)
            link_live(self.root, path)
        m = measure(
            self.runner,
            self.config,
            self.cwd,
            path,
            stop_run,
            tick,
            marker=marker,
            diff=diff,
            env=env,
        )
        if follower is not None and (points := follower.poll(final=True)):
            self.on_curve(n, points)
        if pruned and not self.cancel.is_set():
            m.crash_kind, m.reason, m.pruned = None, pruned, True
            m.trivial = m.environment = False
            self.say(f"#{n}: {pruned}: worse than #{best.number if best else '?'} at that step")
        self.set_state(phase="measuring", current=n, elapsed_s=None, timeout_s=None)
        return m

    @property
    def _direction(self) -> Direction:
        return self.config.metric.direction

    def _best_curve(self, best: Experiment | None) -> list[stops.Point]:
        if best is None or not self.config.decision.prune:
            return []
        return curves.read(self.root, self.tag, best.number)

    def guard(self, n: int, marker: str = "") -> tuple[bool, str]:
        """`marker` is the journaled one: a restarted daemon kills a guard left running."""
        self.set_state(phase="guarding", current=n, message=f"guard: {self.config.run.guard}")
        path = log_path(self.root, self.tag, n, ".guard")
        run = self.config.run
        spec = RunSpec(
            command=run.guard or "",
            cwd=self.cwd,
            env=dict(self.env),
            log_path=path,
            timeout=run.guard_timeout,
            marker=marker,
        )
        result = self.runner.run(spec, self.cancel)
        return result.ok, log_tail(path)

    def off_limits_changed(
        self, parent: str, n: int = 0, events: list[str] | None = None, when: str = ""
    ) -> list[str]:
        """Off-limits files whose checksum moved since the baseline, put back as at `parent`."""
        changed = self.sentinel.changed() if self.sentinel else []
        if changed and self.sentinel:
            self.sentinel.restore(changed, parent)
            if events is not None:
                events.append(f"off-limits file {', '.join(changed)} changed {when}: restored")
                self.say(f"#{n}: {events[-1]}")
        return changed

    def _verdict(
        self, n: int, attempt: Attempt, best: Experiment | None, lines: int, marker: str
    ) -> Verdict:
        m = attempt.m
        if best is None or best.metric is None:
            return Verdict("crash", m.reason or "no metric")
        d, direction = self.config.decision, self.config.metric.direction
        verdict = policy.judge(m.metric, best.metric, direction, d, self.noise_std, lines)
        if not verdict.confirm:
            return verdict
        for i in range(d.confirmation_runs):
            self.say(f"#{n}: near the bar, confirmation run {i + 1}/{d.confirmation_runs}")
            again = self.measure(n, marker, suffix=f".confirm{i + 1}", seed=i + 1)
            if again.metric is not None:
                attempt.confirmation.append(again.metric)
        runs = [m.metric or 0.0, *attempt.confirmation]
        m.metric = policy.confirmed_metric(runs[0], attempt.confirmation)
        verdict = policy.judge(
            m.metric,
            best.metric,
            direction,
            d,
            max(self.noise_std, policy.standard_error(runs)),
            lines,
            confirmed=True,
        )
        verdict.reason = f"{verdict.reason}; {policy.mean_sd(runs)}"
        return verdict
