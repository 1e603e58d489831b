"""The loop as an explicit state machine over its collaborators; it emits events, never prints.

Per iteration:  editing -> (scope check) -> committing -> running -> measuring
                -> [confirmation runs] -> [guarding] -> deciding -> record
A trivial crash goes back to the edit step with its log tail (2 retries), a failed guard to a
rework (2 reworks); everything else is decided at once. The journal is written before every
irreversible step, so a killed daemon resumes consistently (see bootstrap.recover).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec

from . import bootstrap, notes, policy, scope
from .agents.base import EditContext, EditOutcome, FailureKind, Proposer
from .config import Config
from .experiment import Experiment
from .journal import Entry, Journal
from .ledger import Ledger
from .measure import Measurement, log_path, measure
from .protocol import Counts, ExperimentRecorded, LocksChanged, LoopState, Phase, SessionSummary
from .repo import REF_PREFIX, Repo
from .runner import LocalRunner, Runner, RunSpec

MAX_CRASH_RETRIES = 2
MAX_REWORKS = 2
STUCK_AFTER = 3
PROGRESS_EVERY = 5
GUIDANCE_FILE = ".autoresearch/guidance.md"


class LoopStopped(RuntimeError):
    """The loop cannot go on (an environment failure); the message says why and what to do."""


class Progress(msgspec.Struct):
    """A line for people: the CLI prints it, the server logs it."""

    text: str


Event = LoopState | ExperimentRecorded | LocksChanged | Progress


class Loop:
    def __init__(
        self,
        root: Path,
        config: Config,
        proposer: Proposer,
        *,
        runner: Runner | None = None,
        emit: Callable[[Event], None] | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> None:
        self.root = root
        self.config = config
        self.proposer = proposer
        self.runner = runner or LocalRunner()
        self.emit = emit or (lambda event: None)
        self.requested_tag = tag
        self.limit = limit
        self.repo = Repo(root)
        self.ledger = Ledger(root, config.metric.name)
        self.journal = Journal(root / ".autoresearch")
        self.history: list[Experiment] = []
        self.noise_std = 0.0
        self.tag = ""
        self.branch = ""
        self._stop = threading.Event()  # finish the current experiment, then stop
        self.cancel = threading.Event()  # abandon the current step now
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._next_failure: tuple[str, FailureKind] | None = None
        self.state = LoopState(
            root=str(root),
            phase="idle",
            mode="loop",
            metric=config.metric.name,
            direction=config.metric.direction,
            agent=config.agent.kind,
            remaining=limit,
        )

    # ---- controls, from any thread -----------------------------------------------------------

    def stop(self, now: bool = False) -> None:
        self._stop.set()
        if now:
            self.cancel.set()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    # ---- the machine -------------------------------------------------------------------------

    def run(self) -> list[Experiment]:
        """Set up or resume, then iterate until stopped or `limit` iterations are done."""
        try:
            self._phase("setup", message="preflight")
            session = bootstrap.start(
                self.repo, self.config, self.ledger, self.journal, self.requested_tag
            )
            self.tag, self.branch, self.history = session.tag, session.branch, session.history
            self._set(tag=self.tag, branch=self.branch)
            for line in session.recovered:
                self._say(f"recovered: {line}")
            if session.resumed:
                self._say(f"resuming {self.branch} after {len(self.history)} experiments")
            if not self.history:
                self._baseline()
            self._refresh_counts()
            done = 0
            while not self._stop.is_set() and (self.limit is None or done < self.limit):
                if not self._running.is_set():
                    self._phase("paused", current=None)
                    self._running.wait()
                    continue
                self._iterate()
                done += 1
                self._set(remaining=None if self.limit is None else self.limit - done)
            if self.limit is not None and done == self.limit:
                self._say(self.summary())
            self._phase("stopped", current=None, message="stopped")
            return self.history
        except Exception as exc:
            self._phase("failed", current=None, message=str(exc))
            raise
        finally:
            self._locks(locked=False)
            self.repo.close()

    def _baseline(self) -> None:
        self._phase("baseline", current=0, message="running the baseline, unmodified")
        self._locks(locked=True)
        head = self.repo.head()
        self.repo.set_ref(self._ref(0), head)
        marker = uuid.uuid4().hex
        self._journal("committed", 0, head, head, marker=marker)
        started = _now()
        m = self._measure(0, marker)
        if m.metric is None:
            self.journal.write(Entry(tag=self.tag, branch=self.branch))
            raise LoopStopped(
                f"The baseline run failed ({m.reason}); nothing was recorded. Fix the command"
                f" or the metric extraction and start again. End of run.log:\n{m.tail[-1500:]}"
            )
        samples = [m.metric]
        for i in range(self.config.decision.noise_repeats):
            self._phase("measuring", message=f"noise repeat {i + 1}")
            again = self._measure(0, marker, suffix=f".noise{i + 1}")
            if again.metric is not None:
                samples.append(again.metric)
        self.noise_std = policy.noise(samples)
        exp = Experiment(
            number=0,
            commit=head,
            parent=self.repo.parent(head) or "",
            status="keep",
            metric=m.metric,
            memory_gb=m.memory_gb,
            description="baseline",
            tag=self.tag,
            runtime_s=m.result.runtime_s,
            peak_rss_gb=m.result.peak_rss_gb,
            peak_gpu_gb=m.result.peak_gpu_gb,
            exit_code=m.result.exit_code,
            confirmation=samples[1:],
            reason=f"noise sigma {self.noise_std:.6g}" if len(samples) > 1 else "",
            started=started,
            finished=_now(),
        )
        self._record(exp, parent=head)

    def _iterate(self) -> None:
        n = len(self.history)
        parent = self.repo.head()
        failure = self._next_failure
        self._next_failure = None
        events: list[str] = []
        agent_s = 0.0
        crash_retries = reworks = 0
        guard: str | None = None
        started = _now()
        while True:
            outcome, enforcement = self._edit(n, parent, failure)
            agent_s += outcome.agent_s
            events += enforcement.events
            if self.cancel.is_set():
                self._abandon_edit(parent)
                return
            if not enforcement.allowed:
                why = outcome.error or "the edit step changed nothing in scope"
                self._say(f"#{n}: no experiment: {why}")
                self._next_failure = (
                    f"The previous call produced no usable change: {why}",
                    "no_change",
                )
                self.journal.write(Entry(tag=self.tag, branch=self.branch))
                return
            self._phase("committing", current=n)
            description = outcome.description or self._describe(parent)
            sha = self._commit(n, description, enforcement.allowed, parent)
            diff = self.repo.diff_stats(parent, sha)
            marker = uuid.uuid4().hex
            self._journal("committed", n, parent, sha, marker=marker)
            m = self._measure(n, marker, diff=self.repo.git.diff(parent, sha))
            if enforcement.off_limits_touched and m.crash_kind is None:
                m.crash_kind, m.reason = "invalid", "an off-limits file was edited"
            if self._offlimits_changed():
                m.crash_kind, m.reason = "invalid", "an off-limits file changed during the run"
            if m.environment:
                self.repo.reset_hard(parent)
                self.journal.write(Entry(tag=self.tag, branch=self.branch))
                raise LoopStopped(f"Stopped: {m.reason}. End of run.log:\n{m.tail[-1500:]}")
            if m.crash_kind and m.trivial and crash_retries < MAX_CRASH_RETRIES:
                crash_retries += 1
                events.append(f"crash retry {crash_retries}: {m.reason}")
                self._say(f"#{n}: {m.reason}: back to the edit step ({crash_retries}/2)")
                self._retire_attempt(n, sha, f"crash{crash_retries}", parent)
                failure = (f"The run crashed: {m.reason}\n\n{m.tail[-3000:]}", "crash")
                continue
            verdict = self._verdict(n, m, diff.additions - diff.deletions, marker)
            if verdict.status == "keep" and self.config.run.guard:
                ok, output = self._guard(n)
                guard = "passed" if ok else "failed"
                if not ok and reworks < MAX_REWORKS:
                    reworks += 1
                    events.append(f"guard failed, rework {reworks}")
                    self._say(f"#{n}: improved but the guard failed: rework ({reworks}/2)")
                    self._retire_attempt(n, sha, f"rework{reworks}", parent)
                    failure = (f"The guard command failed:\n{output[-3000:]}", "guard")
                    continue
                if not ok:
                    verdict = policy.Verdict("discard", "the guard failed after 2 reworks")
            break
        exp = Experiment(
            number=n,
            commit=sha,
            parent=parent,
            status=verdict.status,
            metric=m.metric,
            memory_gb=m.memory_gb,
            description=description,
            tag=self.tag,
            reason=verdict.reason if verdict.status != "crash" else m.reason,
            crash_kind=m.crash_kind if verdict.status == "crash" else None,
            exit_code=m.result.exit_code,
            runtime_s=m.result.runtime_s,
            agent_s=agent_s,
            peak_rss_gb=m.result.peak_rss_gb,
            peak_gpu_gb=m.result.peak_gpu_gb,
            diff=diff,
            confirmation=self._confirmation,
            guard=guard,  # type: ignore[arg-type]
            events=events,
            params=outcome.params,
            started=started,
            finished=_now(),
        )
        self._record(exp, parent=parent)

    # ---- steps -------------------------------------------------------------------------------

    def _edit(
        self, n: int, parent: str, failure: tuple[str, FailureKind] | None
    ) -> tuple[EditOutcome, scope.Enforcement]:
        self._phase("editing", current=n, message=f"{self.proposer.name} is editing")
        self._locks(locked=self.config.agent.kind != "manual")
        untracked = {c.path for c in self.repo.status() if c.untracked}
        self._journal("editing", n, parent, "")
        ctx = EditContext(
            root=self.root,
            number=n,
            config=self.config,
            history=self.history,
            best=self._best(),
            failure=failure[0] if failure else None,
            failure_kind=failure[1] if failure else None,
            reverts_in_a_row=self._reverts_in_a_row(),
            guidance=self._guidance(),
        )
        started = time.monotonic()
        try:
            outcome = self.proposer.propose(ctx, self.cancel)
        except RuntimeError as exc:  # the agent cannot run here (AgentUnavailable): stop
            self.repo.reset_hard(parent)
            self.journal.write(Entry(tag=self.tag, branch=self.branch))
            raise LoopStopped(f"Stopped: {exc}") from None
        if not outcome.agent_s:
            outcome.agent_s = time.monotonic() - started
        self._locks(locked=True)
        enforcement = scope.enforce(
            self.repo,
            self.branch,
            parent,
            self.config.scope.files,
            self.config.scope.off_limits,
            untracked,
        )
        for event in enforcement.events:
            self._say(f"#{n}: {event}")
        return outcome, enforcement

    def _commit(self, n: int, description: str, paths: list[str], parent: str) -> str:
        try:
            sha = self.repo.commit(f"autoresearch #{n}: {description}", paths)
        except Exception as exc:
            self.repo.git.reset("-q")
            self.repo.reset_hard(parent)
            self.journal.write(Entry(tag=self.tag, branch=self.branch))
            raise LoopStopped(
                f"git commit of experiment #{n} failed: {bootstrap._git_message(exc)}. Fix the"
                " repository's commit hooks (they reject the loop's commits), then resume."
            ) from None
        self.repo.set_ref(self._ref(n), sha)
        return sha

    def _measure(self, n: int, marker: str, suffix: str = "", diff: str = "") -> Measurement:
        self._phase("running", current=n, message=f"running {self.config.run.command}")
        started = time.monotonic()
        timeout = self.config.run.timeout

        def tick(elapsed: float) -> None:
            if time.monotonic() - started >= 1.0:  # at most about once a second
                self._set(elapsed_s=round(elapsed, 1), timeout_s=timeout)

        result = measure(
            self.runner,
            self.config,
            self.root,
            log_path(self.root, self.tag, n, suffix),
            self.cancel,
            tick,
            marker=marker,
            diff=diff,
        )
        self._phase("measuring", current=n, elapsed_s=None, timeout_s=None)
        return result

    def _verdict(self, n: int, m: Measurement, lines: int, marker: str) -> policy.Verdict:
        self._confirmation: list[float] = []
        best = self._best()
        if m.crash_kind or best is None or best.metric is None:
            return policy.Verdict("crash", m.reason or "no metric")
        d, direction = self.config.decision, self.config.metric.direction
        verdict = policy.judge(m.metric, best.metric, direction, d, self.noise_std, lines)
        if not verdict.confirm:
            return verdict
        for i in range(d.confirmation_runs):
            self._say(f"#{n}: near the bar, confirmation run {i + 1}/{d.confirmation_runs}")
            again = self._measure(n, marker, suffix=f".confirm{i + 1}")
            if again.metric is not None:
                self._confirmation.append(again.metric)
        m.metric = policy.confirmed_metric(m.metric or 0.0, self._confirmation)
        return policy.judge(
            m.metric, best.metric, direction, d, self.noise_std, lines, confirmed=True
        )

    def _guard(self, n: int) -> tuple[bool, str]:
        self._phase("guarding", current=n, message=f"guard: {self.config.run.guard}")
        path = log_path(self.root, self.tag, n, ".guard")
        spec = RunSpec(
            command=self.config.run.guard or "",
            cwd=self.root,
            log_path=path,
            timeout=self.config.run.guard_timeout,
        )
        result = self.runner.run(spec, self.cancel)
        from .triage import log_tail

        return result.ok, log_tail(path)

    def _record(self, exp: Experiment, parent: str) -> None:
        self._phase("deciding", current=exp.number)
        self._journal("decided", exp.number, parent, exp.commit, record=exp)
        self.ledger.record(exp)
        if exp.status != "keep":
            self.repo.reset_hard(parent)
        self.journal.write(Entry(tag=self.tag, branch=self.branch))
        self.history.append(exp)
        self.proposer.observe(exp)
        self._refresh_counts()
        self.emit(ExperimentRecorded(root=str(self.root), tag=self.tag, experiment=exp))
        self._say(self._line(exp))
        if exp.number and exp.number % PROGRESS_EVERY == 0:
            c = self.state.counts
            best = self._best()
            self._say(
                f"=== Iteration {exp.number}: {self.config.metric.name} at"
                f" {_fmt(best.metric if best else None)}, {c.keep} keeps / {c.discard} discards"
                f" / {c.crash} crashes ==="
            )
            self._refresh_notes()

    def _retire_attempt(self, n: int, sha: str, label: str, parent: str) -> None:
        """A retried attempt stays reviewable under its own ref; the tree goes back."""
        self.repo.set_ref(f"{self._ref(n)}-{label}", sha)
        self.repo.reset_hard(parent)

    def _abandon_edit(self, parent: str) -> None:
        self.repo.reset_hard(parent)
        self.journal.write(Entry(tag=self.tag, branch=self.branch))

    def _refresh_notes(self) -> None:
        path = self.root / notes.NOTES_FILE
        text = notes.render(self.config, self.tag, self.history)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return
        path.write_text(text, encoding="utf-8")
        try:
            self.repo.commit("autoresearch: refresh notes", [notes.NOTES_FILE])
        except Exception as exc:
            self._say(f"could not commit {notes.NOTES_FILE}: {bootstrap._git_message(exc)}")
            self.repo.restore([notes.NOTES_FILE])

    # ---- helpers -----------------------------------------------------------------------------

    def _best(self) -> Experiment | None:
        for exp in reversed(self.history):
            if exp.status == "keep":
                return exp
        return None

    def _reverts_in_a_row(self) -> int:
        count = 0
        for exp in reversed(self.history):
            if exp.status == "keep":
                break
            count += 1
        return count

    def _guidance(self) -> str:
        path = self.root / GUIDANCE_FILE
        try:
            return path.read_text(encoding="utf-8").strip()
        except (FileNotFoundError, UnicodeDecodeError):
            return ""

    _offlimits: tuple[list[str], dict[str, str]] | None = None

    def _offlimits_changed(self) -> bool:
        """Checksums of the off-limits files, taken once, compared before every decision."""
        if not self.config.scope.off_limits:
            return False
        if self._offlimits is None:
            files = scope.expand(self.root, self.repo.ls_files(), self.config.scope.off_limits)
            self._offlimits = (files, scope.checksums(self.root, files))
        files, sums = self._offlimits
        return scope.checksums(self.root, files) != sums

    def _describe(self, parent: str) -> str:
        stat = self.repo.git.diff("--shortstat", parent)
        files = self.repo.git.diff("--name-only", parent).split()
        return f"edit {', '.join(files[:3])}" + (f" ({stat.strip()})" if stat else "")

    def _ref(self, n: int) -> str:
        return f"{REF_PREFIX}{self.tag}/{n}"

    def _journal(self, step: str, n: int, parent: str, commit: str, **extra: object) -> None:
        entry = Entry(
            tag=self.tag, branch=self.branch, step=step, number=n, parent=parent, commit=commit
        )  # type: ignore[arg-type]
        for key, value in extra.items():
            setattr(entry, key, value)
        self.journal.write(entry)

    def _line(self, exp: Experiment) -> str:
        best = self._best()
        delta = ""
        if exp.metric is not None and exp.number and best and best.metric is not None:
            prev = [e for e in self.history[:-1] if e.status == "keep"]
            if prev and prev[-1].metric is not None:
                delta = f" ({exp.metric - prev[-1].metric:+.6g})"
        why = f" [{exp.reason}]" if exp.status != "keep" and exp.reason else ""
        return (
            f"#{exp.number} {exp.status:<7} {_fmt(exp.metric)}{delta} {exp.memory_gb:.1f} GB"
            f"  {exp.description}{why}"
        )

    def summary(self) -> str:
        c = self.state.counts
        base = self.history[0].metric if self.history else None
        best = self._best()
        final = best.metric if best else None
        change = ""
        if base is not None and final is not None:
            pct = f", {100 * (final - base) / abs(base):+.2f}%" if base else ""
            change = f" ({final - base:+.6g}{pct})"
        iterations = len(self.history) - 1
        return "\n".join(
            [
                f"=== Autoresearch complete ({iterations} experiments, tag {self.tag}) ===",
                f"Baseline: {_fmt(base)} -> Best: {_fmt(final)}{change}",
                f"Keeps: {c.keep} | Discards: {c.discard} | Crashes: {c.crash}",
                f"Best: #{best.number} {best.description}" if best else "Best: none",
                f"Branch: {self.branch} | results.tsv | refs under {REF_PREFIX}{self.tag}/",
            ]
        )

    def _refresh_counts(self) -> None:
        counts = Counts()
        for exp in self.history[1:]:
            setattr(counts, exp.status, getattr(counts, exp.status) + 1)
        best = self._best()
        self._set(
            counts=counts,
            iteration=max(len(self.history) - 1, 0),
            best=best.metric if best else None,
            best_number=best.number if best else None,
            baseline=self.history[0].metric if self.history else None,
            sessions=self.sessions(),
        )

    def sessions(self) -> list[SessionSummary]:
        return summarize_sessions(self.ledger, self.config.metric.direction)

    def _phase(self, phase: Phase, **changes: object) -> None:
        self._set(phase=phase, **changes)

    def _set(self, **changes: object) -> None:
        self.state = msgspec.structs.replace(self.state, **changes)
        self.emit(self.state)

    def _locks(self, locked: bool) -> None:
        self.emit(
            LocksChanged(
                root=str(self.root),
                locked=list(self.config.scope.files) if locked else [],
                off_limits=list(self.config.scope.off_limits),
                reason="the autoresearch loop is running" if locked else "",
            )
        )

    def _say(self, text: str) -> None:
        self.emit(Progress(text))


def summarize_sessions(ledger: Ledger, direction: str) -> list[SessionSummary]:
    out = []
    for tag, exps in ledger.sessions.items():
        counts = Counts()
        for exp in exps[1:]:
            setattr(counts, exp.status, getattr(counts, exp.status) + 1)
        keeps = [e for e in exps if e.status == "keep" and e.metric is not None]
        best = None
        if keeps:
            pick = min if direction == "lower" else max
            best = pick(keeps, key=lambda e: e.metric or 0.0)
        out.append(
            SessionSummary(
                tag=tag,
                branch=f"autoresearch/{tag}",
                total=len(exps),
                counts=counts,
                best=best.metric if best else None,
                best_number=best.number if best else None,
            )
        )
    return out


def _fmt(value: float | None) -> str:
    return "NA" if value is None else f"{value:.6g}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
