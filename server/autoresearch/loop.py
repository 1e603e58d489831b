"""The loop as an explicit state machine over its collaborators; it emits events, never prints.

Per iteration:  editing -> (scope check) -> committing -> running -> measuring
                -> [confirmation runs] -> [guarding] -> deciding -> record
An edit that changes nothing in scope is no experiment: the next call is told why. A trivial
crash goes back to the edit step with its log tail and the broken change still in the files
(2 retries), a failed guard to a rework from the parent (2 reworks); everything else is decided
at once. The journal is written before every irreversible step, so a killed daemon resumes
consistently (see bootstrap.recover).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable, MutableSequence
from pathlib import Path

import msgspec

from . import (
    bootstrap,
    describe,
    diskspace,
    edit_step,
    guarded_reset,
    notes,
    policy,
    runlogs,
    scope,
    stops,
)
from .agents import usage
from .agents.base import AgentUnavailable, EditOutcome, FailureKind, Proposer
from .agents.manual import ManualProposer
from .attempt import Attempt, Bench
from .config import Config
from .edit_step import GUIDANCE_FILE, Edit, EditStep
from .experiment import DiffStats, Experiment
from .journal import Entry, Journal
from .ledger import Ledger
from .measure import log_path
from .notify import Webhook
from .prompt import CHANGE_APPROACH_AFTER
from .protocol import (
    CurvePoints,
    ExperimentRecorded,
    LocksChanged,
    LoopNotice,
    LoopState,
    Method,
    NoticeKind,
    Phase,
    SessionSummary,
)
from .repo import REF_PREFIX, Change, Repo
from .runner import LocalRunner, Runner
from .session_records import Tally

__all__ = ["GUIDANCE_FILE", "Event", "Loop", "LoopStopped", "Progress"]

MAX_CRASH_RETRIES = 2
MAX_REWORKS = 2
STUCK_AFTER = CHANGE_APPROACH_AFTER
PROGRESS_EVERY = 5
# git's automatic maintenance, every this many experiments and at the end (Repo.maintain).
MAINTAIN_EVERY = 50
# Failed agent calls (non-zero exit, timeout) in a row that stop the loop: a broken agent
# (no API key, no network, no quota) must not spin. A pause comes before each repeat.
MAX_AGENT_FAILURES = 3
AGENT_RETRY_WAIT_S = 10.0
# Crashes in a row that make a notice (once per streak).
CRASH_NOTICE_AFTER = 3


class LoopStopped(RuntimeError):
    """The loop cannot go on (an environment failure); the message says why and what to do."""


class Progress(msgspec.Struct):
    """A line for people: the CLI prints it, the server logs it."""

    text: str


Event = LoopState | ExperimentRecorded | LocksChanged | Progress | CurvePoints | LoopNotice
# The notification each event but Progress (a line for people) goes to the editor as: the one
# table the in-process host, the detached loop and the daemon attached to it all go by.
NOTIFICATIONS: dict[type[msgspec.Struct], str] = {
    LoopState: Method.STATE_CHANGED,
    ExperimentRecorded: Method.EXPERIMENT_RECORDED,
    LocksChanged: Method.LOCKS_CHANGED,
    CurvePoints: Method.CURVE_POINTS,
    LoopNotice: Method.NOTICE,
}


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
        # A resume's is the ledger's History: its records decoded when first used whole.
        self.history: MutableSequence[Experiment] = []
        self.tag = ""
        self.branch = ""
        # The enforced off-limits globs (configured + guard and test files) and their checksums.
        self.off_limits = list(config.scope.off_limits)
        # Their expansion into concrete paths (the editor's locks), and the last locks sent.
        self._paths: scope.Paths | None = None
        self._locks_sent: LocksChanged | None = None
        self.agent_retry_wait_s = AGENT_RETRY_WAIT_S
        self._stop = threading.Event()  # finish the current experiment, then stop
        self.cancel = threading.Event()  # abandon the current step now
        self._running = threading.Event()  # cleared while paused
        self._running.set()
        self._started = time.monotonic()  # for [stop] wall_clock
        # What the next edit call is told, and events of no-experiment calls before it.
        self._next_failure: tuple[str, FailureKind] | None = None
        self._carried: list[str] = []
        self._agent_failures = 0
        self._failed_call = False  # the last iteration's agent call failed: no experiment
        # Where the loop left HEAD, a person's uncommitted edits from before the edit step, and
        # the out-of-scope edits already reported as left in place (guarded_reset).
        self._head = ""
        self._dirt: dict[str, bytes | None] = {}
        self._left: set[str] = set()
        # The snapshot the next edit step starts from, when a decision has just read it: a
        # discard's `git status` (before its reset) is also the next edit's. Cleared by a pause.
        self._next_snapshot: guarded_reset.Snapshot | None = None
        self._pruned = 0  # run logs below this number are pruned (runlogs.prune)
        self.bench = Bench(root, config, self.runner, self.cancel, self._set, self._say)
        self.bench.on_curve = self._curve
        hook = config.notify.webhook
        self.webhook = Webhook(hook) if hook else None
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

    def run(self) -> MutableSequence[Experiment]:
        """Set up or resume, then iterate until stopped or `limit` iterations are done."""
        self._started = time.monotonic()
        try:
            self._phase("setup", message="preflight")
            self._before_start()
            session = bootstrap.start(
                self.repo, self.config, self.ledger, self.journal, self.requested_tag
            )
            self.tag, self.branch, self.history = session.tag, session.branch, session.history
            self._set(tag=self.tag, branch=self.branch)
            for line in session.recovered:
                self._say(f"recovered: {line}")
            if session.resumed:
                count = len(self.history)
                self._say(f"resuming {self.branch} after {count} experiment{'s' * (count != 1)}")
            self._prepare()
            self._head = self.repo.head()
            if not self.history:
                self._baseline()
            elif session.rerun is not None:
                self._rerun(session.rerun)
            self._refresh_counts()
            done, why = self._work()
            # Done as asked (--loop N): the editor says so (phaseMessage); the hook is told.
            asked = self.limit is not None and done == self.limit and not why
            if why:
                self._say(f"stopping: {why}")
                self._say(f"{self.summary()}\nStopped: {why}.")
            elif asked:
                self._say(self.summary())
            self._refresh_notes()  # the recovery document ends with every experiment of the run
            self._maintain()
            self._locks(locked=False)  # unlocked before "stopped" is announced: it must be true
            self._phase("stopped", current=None, message=f"stopped: {why}" if why else "stopped")
            if why or asked:  # stopped by itself; a person's own stop needs no notice
                text = self._stopped_text(why or f"the {self.limit} requested experiments are done")
                self._notice("stopped", text, self._tally().best_number, editor=bool(why))
            return self.history
        except Exception as exc:
            full = diskspace.disk_full(exc, self.root)  # one plain message, wherever it hit
            with contextlib.suppress(Exception):  # as for "stopped"; the finally tries again
                self._locks(locked=False)
            self._phase("failed", current=None, message=str(full or exc))
            with contextlib.suppress(Exception):
                self._notice("failed", f"failed: {str(full or exc)[:500]}")
            if full is not None and full is not exc:
                raise full from exc
            raise
        finally:
            self._locks(locked=False)
            self.repo.close()
            if self.webhook is not None:
                self.webhook.close()

    def _work(self) -> tuple[int, str]:
        """Experiments one at a time until stopped, `limit` are done or a [stop] condition
        holds: how many were made, and the condition met ('' if none)."""
        done, why = 0, ""
        while not self._stop.is_set() and (self.limit is None or done < self.limit):
            if why := self._stop_reason():
                break
            # Manual mode pauses in its edit step (_hold_edit), after the person's earlier
            # edits are set aside: one made while paused is theirs for the next experiment.
            if not self._running.is_set() and not isinstance(self.proposer, ManualProposer):
                self._next_snapshot = None  # a person may edit while paused: read it again
                self._phase("paused", current=None)
                self._running.wait()
                continue
            self._iterate()
            # --loop N means N experiments: a failed agent call is none (at most 3 in a row).
            done += not self._failed_call
            self._set(remaining=None if self.limit is None else self.limit - done)
        return done, why

    def _before_start(self) -> None:
        """What a resume must do before bootstrap reads the refs (parallel workers)."""

    def _stop_reason(self) -> str:
        """A `[stop]` condition met by the session so far, or ''."""
        elapsed = time.monotonic() - self._started
        c = self.config
        return stops.stop_reason(c.stop, c.metric.direction, self.history, elapsed) or ""

    def _notice(
        self, kind: NoticeKind, text: str, number: int | None = None, editor: bool = True
    ) -> None:
        """Tell the editor, and the webhook when one is set (a new best only if asked)."""
        if editor:
            self.emit(LoopNotice(str(self.root), kind, text, tag=self.tag, number=number))
        if self.webhook is not None and (kind != "new_best" or self.config.notify.new_best):
            self.webhook.send(f"autoresearch {self.root.name} ({self.tag}): {text}")

    def _stopped_text(self, why: str) -> str:
        tally, name = self._tally(), self.config.metric.name
        runs = max(tally.total - 1, 0)
        best = f"; best {name} {tally.best:.6g} (#{tally.best_number})" if tally.best else ""
        return f"stopped: {why}. {runs} experiment{'s' * (runs != 1)}{best}"

    def _after_record(self, exp: Experiment, prev: Experiment | None) -> None:
        """The notices a record can make: a new best, a streak of crashes."""
        if exp.status == "keep" and exp.number > 0 and exp.metric is not None:
            was = f" (was {prev.metric:.6g})" if prev and prev.metric is not None else ""
            text = f"new best {self.config.metric.name} {exp.metric:.6g} at #{exp.number}{was}"
            self._notice("new_best", text, exp.number)
        crashes = 0
        for e in reversed(self.history):
            if e.status != "crash" or e.number == 0:
                break
            crashes += 1
        if crashes == CRASH_NOTICE_AFTER:
            text = f"{crashes} crashes in a row, the last #{exp.number}: {exp.reason[:300]}"
            self._notice("crashes", text, exp.number)

    def _curve(self, n: int, points: list[stops.Point]) -> None:
        steps, values = [s for s, _ in points], [v for _, v in points]
        self.emit(CurvePoints(str(self.root), self.tag, n, steps, values))
        self._set(curve_step=steps[-1], curve_value=values[-1])

    def _prepare(self) -> None:
        """Fix the off-limits set and checksum it on the clean tree the baseline runs on (or
        resumes from); the agent is told the same set."""
        c = self.config
        tracked = self.repo.ls_files()
        self.off_limits = scope.protected(c.scope.off_limits, c.scope.files, c.run.guard, tracked)
        self.bench.tag = self.tag
        self.bench.sentinel = scope.Sentinel(self.repo, self.off_limits)
        self._paths = None  # expanded again with these off-limits
        self._agent_config = msgspec.structs.replace(
            c, scope=msgspec.structs.replace(c.scope, off_limits=self.off_limits)
        )
        self.editor = EditStep(self.repo, self.ledger, self.proposer, self.tag)
        if self.history and self.history[0].metric is not None:  # resumed: the baseline's noise
            base = self.history[0]
            self.bench.noise_std = policy.noise([base.metric, *base.confirmation])

    def _baseline(self) -> None:
        self._check_disk()
        self._phase("baseline", current=0, message="running the baseline, unmodified")
        self._locks(locked=True)
        head = self.repo.head()
        self.repo.set_ref(self._ref(0), head)
        marker = uuid.uuid4().hex
        self._journal("committed", 0, head, head, marker=marker)
        started = _now()
        m = self.bench.measure(0, marker)
        if m.metric is None:
            self.journal.write(Entry(tag=self.tag, branch=self.branch))
            raise LoopStopped(
                f"The baseline run failed ({m.reason}); nothing was recorded. Fix the command"
                f" or the metric extraction and start again. {_log_end(m.tail)}"
            )
        changed = self.bench.off_limits_changed(head)
        if changed:
            self.journal.write(Entry(tag=self.tag, branch=self.branch))
            raise LoopStopped(
                f"The command itself changes the off-limits file(s) {', '.join(changed)}, so"
                " every run would be invalid (they were restored). Stop the command writing"
                " them, or take them out of scope.off_limits (and out of the guard command)."
            )
        samples = [m.metric]
        for i in range(self.config.decision.noise_repeats):
            self._phase("measuring", message=f"noise repeat {i + 1}")
            again = self.bench.measure(0, marker, suffix=f".noise{i + 1}", seed=i + 1)
            if again.metric is not None:
                samples.append(again.metric)
        self.bench.noise_std = policy.noise(samples)
        why = (
            f"noise sigma {self.bench.noise_std:.6g}; {policy.mean_sd(samples)}"
            if len(samples) > 1
            else ""
        )
        base = Attempt(head, "baseline", DiffStats(), m, policy.Verdict("keep", why))
        base.confirmation = samples[1:]
        exp = base.record(0, self.repo.parent(head) or "", self.tag, [], 0.0, started, _now())
        self._record(exp, parent=head)

    def _iterate(self) -> None:
        self._check_disk()
        n = len(self.history)
        self._check_head(f"before experiment #{n}")
        parent = self._head
        failure, self._next_failure = self._next_failure, None
        events, self._carried = self._carried, []
        self._failed_call = False
        strays: list[str] = []
        started, agent_s = _now(), 0.0
        costs: list[EditOutcome] = []  # each call's cost, summed into the record
        retries = reworks = 0
        kept_in_tree: set[str] = set()  # a crashed attempt's files, left for the agent to fix
        last: Attempt | None = None
        retired = ""  # the label of the last attempt put aside (crash1, rework2, ...)
        reverts = edit_step.reverts_in_a_row(self.history)
        # Only a coding agent or the editor's model reads the "change approach" hint.
        if (
            reverts
            and reverts % STUCK_AFTER == 0
            and self.config.agent.kind in ("command", "editor")
        ):
            self._say(f"#{n}: {reverts} reverts in a row: the agent is told to change approach")
        while True:
            edit = self._edit(n, parent, failure, retries + reworks, kept_in_tree)
            outcome, allowed = edit.outcome, edit.enforcement.allowed
            agent_s += outcome.agent_s
            costs.append(outcome)
            events += edit.enforcement.events
            strays += edit.strays
            if self.cancel.is_set():
                self._abandon_edit(parent)
                return
            if outcome.error:
                events.append(f"{outcome.error}: {'its edit is used' if allowed else 'no edit'}")
                if allowed:
                    self._say(f"#{n}: {events[-1]} (log {outcome.log})")
            if not allowed:
                if last is None:
                    self._no_experiment(n, edit, events)
                    return
                events.append(f"attempt {retries + reworks + 1} left nothing to run")
                self._say(f"#{n}: the retry left nothing to run: the previous attempt stands")
                break
            self._agent_failures = 0
            self._phase("committing", current=n)
            description = outcome.description or describe.diff_summary(self.repo, parent, allowed)
            # A retry's commit takes over ref n from the attempt it retires (kept as n-<label>).
            sha = self._commit(n, description, edit.enforcement, parent, last.sha if last else None)
            if last is not None and self._same_tree(sha, last.sha):
                events.append(f"attempt {retries + reworks + 1} is the same code: not run again")
                self._say(f"#{n}: the retry left the code as it was: the previous run stands")
                self.repo.reset_keep(parent)
                self._head = parent
                self.repo.set_ref(self._ref(n), last.sha, old=sha)
                break
            self._keep_logs(n, retired)
            touched = edit.enforcement.off_limits
            invalid = f"off-limits file {', '.join(touched)} was edited" if touched else ""
            if not invalid:  # a long run must not look like a hang
                self._say(f"#{n} started: {description}")
            last = self._try(n, parent, sha, description, invalid, edit.outcome.params, events)
            if last.m.crash_kind and last.m.trivial and retries < MAX_CRASH_RETRIES:
                retries += 1
                retired, failure = self._back_to_edit(n, last, retries, events)
                kept_in_tree = self._retire_attempt(n, sha, retired, parent, True, events)
                continue
            if last.guard == "failed" and reworks < MAX_REWORKS:
                reworks += 1
                retired, failure = self._back_to_edit(n, last, reworks, events)
                kept_in_tree = self._retire_attempt(n, sha, retired, parent, False, events)
                continue
            break
        if last.guard == "failed":
            tries = f"{reworks} rework{'s' if reworks != 1 else ''}"
            last.verdict = policy.Verdict("discard", f"the guard failed after {tries}")
        exp = last.record(n, parent, self.tag, events, agent_s, started, _now())
        exp.cost_usd, exp.tokens = usage.total(costs)
        self._record(exp, parent=parent)
        if strays:
            self._next_failure = (
                f"Your previous change also edited {', '.join(sorted(set(strays)))}, which you"
                " may not edit; those edits were undone.",
                "scope",
            )

    def _back_to_edit(
        self, n: int, last: Attempt, count: int, events: list[str]
    ) -> tuple[str, tuple[str, FailureKind]]:
        """Attempt `last` of #n goes back to the edit step, as crash retry or guard rework
        number `count`: said and noted in `events`; its label and what the next call is told."""
        if last.guard != "failed":
            events.append(f"crash retry {count}: {last.m.reason}")
            self._say(f"#{n}: {last.m.reason}: back to the edit step ({count}/2)")
            return f"crash{count}", (
                f"The run crashed: {last.m.reason}\n\n{last.m.tail[-3000:]}",
                "crash",
            )
        events.append(f"guard failed, rework {count}")
        self._say(f"#{n}: improved but the guard failed: rework ({count}/2)")
        return f"rework{count}", (
            f"The guard command failed:\n{last.guard_output[-3000:]}",
            "guard",
        )

    # ---- steps -------------------------------------------------------------------------------

    def _edit(
        self,
        n: int,
        parent: str,
        failure: tuple[str, FailureKind] | None,
        attempt: int,
        kept_in_tree: set[str],
    ) -> Edit:
        label = f" (attempt {attempt + 1})" if attempt else ""

        def announce() -> None:
            self._phase("editing", current=n, message=f"{self.proposer.name} is editing{label}")

        if isinstance(self.proposer, ManualProposer):  # a person: told once Run Experiment works
            self.proposer.on_waiting = announce
            self.proposer.interrupted = lambda: self._stop.is_set() or not self._running.is_set()
            self.proposer.hold = self._hold_edit
        else:
            announce()
        self._locks(locked=self.config.agent.kind != "manual")
        self._journal("editing", n, parent, "", keep_edit=self.config.agent.kind == "manual")
        ctx = edit_step.context(
            self.root, self._agent_config, self.history, self._best(), failure, attempt
        )
        # A person's uncommitted edits (outside the scope) are theirs, not the edit step's.
        carried, self._next_snapshot = self._next_snapshot, None
        dirt, untracked = carried or guarded_reset.snapshot(self.repo)
        dirt = {path: data for path, data in dirt.items() if path not in kept_in_tree}
        # A person's in-scope edits since the last decision (a keep sets nothing aside: HEAD
        # stays) are stashed now, never taken into this experiment's commit.
        said = self._set_aside_in_scope(n, dirt)
        self._dirt = dirt
        try:
            edit = self.editor.call(
                ctx,
                self.branch,
                parent,
                self.off_limits,
                kept_in_tree,
                self.cancel,
                self._dirt,
                untracked,
            )
        except Exception as exc:
            self._abandon_edit(parent)
            if isinstance(exc, AgentUnavailable):  # retrying cannot install the agent
                raise LoopStopped(f"Stopped: {exc}") from None
            raise
        edit.enforcement.events[:0] = said
        if not self.cancel.is_set():  # stopping: the final unlock follows, no lock in between
            self._locks(locked=True, touched=edit.enforcement.allowed)
        for event in edit.enforcement.events[len(said) :]:
            self._say(f"#{n}: {event}")
        return edit

    def _hold_edit(self) -> None:
        """Manual mode, paused or stopped while the person edits: no experiment runs, so it
        takes effect now. Paused: shown so until resumed (the scope stays writable); a stop
        abandons the edit step (their edit stays, _abandon_edit)."""
        if not self._stop.is_set() and not self._running.is_set():
            self._phase("paused", current=None)
            self._running.wait()
        if self._stop.is_set():
            self.stop(now=True)

    def _no_experiment(self, n: int, edit: Edit, events: list[str]) -> None:
        """Nothing to run: say why, tell the next call, keep the events for the next record."""
        why, self._next_failure = edit_step.nothing_to_run(edit)
        where = f" (log {edit.outcome.log})" if edit.outcome.error and edit.outcome.log else ""
        self._say(f"#{n}: no experiment: {why}{where}")
        self._carried = [*events, f"a call before this experiment made none: {why}"][-20:]
        self.journal.write(Entry(tag=self.tag, branch=self.branch))
        outcome = edit.outcome
        if not outcome.error:
            return
        self._failed_call = True
        self._agent_failures += 1
        if self._agent_failures >= MAX_AGENT_FAILURES:
            raise LoopStopped(
                f"Stopped: the agent failed {self._agent_failures} times in a row (last: {why})."
                " Run its command by hand to see why (API key, network, quota, agent.timeout),"
                f" then start the loop again. Its log: {outcome.log}\n{outcome.output[-1500:]}"
            )
        said = usage.first_lines(outcome.output)
        self._say(f"#{n}: the agent said:\n{said}" if said else f"#{n}: the agent said nothing")
        self._say(f"#{n}: calling the agent again in {self.agent_retry_wait_s:g} s")
        self._stop.wait(self.agent_retry_wait_s)

    def _commit(
        self,
        n: int,
        description: str,
        edit: scope.Enforcement,
        parent: str,
        retired: str | None,
    ) -> str:
        try:
            # scope.enforce emptied the staging area: the allowed paths are the whole commit.
            message, tracked = f"autoresearch #{n}: {description}", not edit.added
            sha = self.repo.commit(message, edit.allowed, tracked=tracked)
        except Exception as exc:
            guarded_reset.discard_edit(self.repo, parent, self._dirt)
            self.journal.write(Entry(tag=self.tag, branch=self.branch))
            if full := diskspace.disk_full(exc, self.root):
                raise full from exc
            raise LoopStopped(
                f"git commit of experiment #{n} failed: {bootstrap._git_message(exc)}. Fix the"
                " repository's commit hooks (they reject the loop's commits), then resume."
            ) from None
        self._head = sha
        self.repo.set_ref(self._ref(n), sha, old=retired)
        return sha

    def _try(
        self,
        n: int,
        parent: str,
        sha: str,
        description: str,
        invalid: str,
        params: dict[str, float | str],
        events: list[str],
    ) -> Attempt:
        """Run and judge a committed attempt; an environment failure stops the loop. `invalid`:
        why it must not run (an off-limits edit)."""
        marker = uuid.uuid4().hex
        # What a resume needs to run this commit again if the daemon is stopped meanwhile.
        pending = Experiment(
            number=n,
            commit=sha,
            status="crash",
            description=description,
            tag=self.tag,
            parent=parent,
            events=list(events),
            params=params,
        )
        self._journal("committed", n, parent, sha, marker=marker, record=pending)
        diff = self.repo.diff_stats(parent, sha)

        def text() -> str:  # the whole diff, read only if a crash needs triage
            return self.repo.diff_text(parent, sha)

        attempt = self.bench.attempt(
            n, sha, description, diff, invalid, marker, text, self._best(), events, parent
        )
        attempt.params = params
        if attempt.m.environment:
            self._check_head(f"during experiment #{n}")
            self._set_aside(n, parent)
            self.repo.reset_keep(parent)
            self._head = parent
            self.journal.write(Entry(tag=self.tag, branch=self.branch))
            raise LoopStopped(f"Stopped: {attempt.m.reason}. {_log_end(attempt.m.tail)}")
        return attempt

    def _record(self, exp: Experiment, parent: str) -> None:
        self._phase("deciding", current=exp.number)
        # A discard goes back to the parent; a keep (the baseline too) to its own commit. Only
        # if the branch is as the loop left it; a person's edits meanwhile are set aside first.
        target = parent if exp.status != "keep" else exp.commit
        stopped = ""
        left: list[Change] | None = None
        try:
            self._check_head(f"during experiment #{exp.number}")
            if target != self._head:  # a keep leaves HEAD: the next edit step sets aside
                status = self.repo.status() if self._carries_snapshot() else None
                said, kept = self._set_aside(exp.number, target, status)
                exp.events += said
                # What the reset leaves as it is: the untracked files and the edits outside
                # the scope (it rewrites only the experiment's files; edits of those are stashed).
                left = None if status is None else [c for c in status if c.untracked] + kept
        except LoopStopped as exc:
            stopped = str(exc)
            exp.events.append("the branch was not as the loop left it: stopped, nothing reset")
        self._journal("decided", exp.number, parent, exp.commit, record=exp)
        prev = self._best()
        self.ledger.record(exp)
        if not stopped and target != self._head:  # a keep stays where it is: no reset to run
            self.repo.reset_keep(target)
            self._head = target
            if left is not None:
                self._next_snapshot = guarded_reset.snapshot(self.repo, left)
        self.journal.write(Entry(tag=self.tag, branch=self.branch))
        self.history.append(exp)
        self.proposer.observe(exp)
        self._refresh_counts()
        self.emit(ExperimentRecorded(root=str(self.root), tag=self.tag, experiment=exp))
        self._say(describe.result_line(exp, prev))
        self._after_record(exp, prev)
        self._pruned = runlogs.prune(
            self.root, self.ledger.sessions, self.tag, self.config.run.keep_logs, self._pruned
        )
        if stopped:
            raise LoopStopped(stopped)
        if exp.number and exp.number % PROGRESS_EVERY == 0:
            self._say(describe.checkpoint(exp.number, self.config.metric.name, self._tally()))
            self._refresh_notes()
            if exp.number % MAINTAIN_EVERY == 0:
                self._maintain()

    def _retire_attempt(
        self, n: int, sha: str, label: str, parent: str, keep: bool, events: list[str]
    ) -> set[str]:
        """A retried attempt stays reviewable under its own ref. HEAD goes back to `parent`;
        with `keep` its changes stay in the files (for the agent to fix), else they go too.
        Returns the paths left in the tree."""
        self.repo.set_ref(f"{self._ref(n)}-{label}", sha)
        self._check_head(f"during experiment #{n}")
        self._head = parent
        if not keep:
            events += self._set_aside(n, parent)[0]
            self.repo.reset_keep(parent)
            return set()
        self.repo.reset_mixed(parent)
        return set(self.repo.changed_files(parent, sha))

    def _keep_logs(self, n: int, label: str) -> None:
        """Before a retry runs, the retired attempt's logs move aside: <tag>-<n>.<label>.log."""
        for what in ("", ".guard") if label else ():
            src = log_path(self.root, self.tag, n, what)
            if src.exists():
                src.rename(log_path(self.root, self.tag, n, f".{label}{what}"))

    def _check_disk(self) -> None:
        """Before an experiment: stop on a (nearly) full disk rather than half-run it, and set
        aside the reserve that lets a run filling the disk still be recorded."""
        diskspace.check(self.root, self.config.run.min_free_mb)

    def _abandon_edit(self, parent: str) -> None:
        """Stopped during the edit step. A person's edit (manual mode) is theirs: it stays in
        the working tree; an agent's half-made edit is undone, a person's older edits kept."""
        if self.config.agent.kind == "manual" and self.repo.head() == parent:
            if self.repo.status():
                self._say("stopped during your edit: it is left in the working tree, uncommitted")
        else:
            if self.repo.branch() == self.branch and self.repo.head() != parent:
                self.repo.reset_soft(parent)  # the edit step committed
            guarded_reset.discard_edit(self.repo, parent, self._dirt)
        self.journal.write(Entry(tag=self.tag, branch=self.branch))

    def _refresh_notes(self) -> None:
        path = self.root / notes.NOTES_FILE
        text = notes.render(self.config, self.tag, self.history)
        if path.exists() and path.read_text(encoding="utf-8") == text:
            return
        if self._notes_edited():
            # Uncommitted changes of the notes (preflight lets them through as the loop's) may
            # be a person's: set aside, never overwritten.
            what = f"your uncommitted edit of {notes.NOTES_FILE}"
            self._say(guarded_reset.stash(self.repo, [notes.NOTES_FILE], what))
            # The snapshot a discard carried holds that edit: read the tree again instead.
            self._next_snapshot = None
        path.write_text(text, encoding="utf-8")
        try:
            self._head = self.repo.commit("autoresearch: refresh notes", [notes.NOTES_FILE])
        except Exception as exc:
            self._say(f"could not commit {notes.NOTES_FILE}: {bootstrap._git_message(exc)}")
            self.repo.restore([notes.NOTES_FILE])

    def _maintain(self) -> None:
        """git's automatic maintenance, which the loop's commits leave to it (Repo.commit)."""
        try:
            self.repo.maintain()
        except Exception as exc:  # a repository git cannot pack is still one to experiment in
            self._say(f"git maintenance failed: {bootstrap._git_message(exc)}")

    def _notes_edited(self) -> bool:
        """Uncommitted changes of the notes; a file equal to HEAD's needs no `git status`."""
        try:
            if (
                self.repo.file_at("HEAD", notes.NOTES_FILE)
                == (self.root / notes.NOTES_FILE).read_bytes()
            ):
                return False
        except OSError:
            pass
        return notes.NOTES_FILE in guarded_reset.paths_of(guarded_reset.tracked_changes(self.repo))

    def _rerun(self, pending: Experiment) -> None:
        """Experiment #n was interrupted by a stopped daemon: its commit runs once more, as it
        was (no edit step, no retries). Interrupted again, recovery records it as a crash."""
        n, sha, parent = pending.number, pending.commit, pending.parent
        self._check_disk()  # a re-run is an experiment too; stopped here, it stays pending
        self._say(f"#{n}: interrupted before its decision: running its commit {sha[:7]} again")
        self._locks(locked=True)
        self._head = sha
        self.repo.set_ref(self._ref(n), sha)
        events = [*pending.events, bootstrap.RERUN_EVENT]
        started = _now()
        self._phase("running", current=n)
        last = self._try(n, parent, sha, pending.description, "", pending.params, events)
        if last.guard == "failed":
            last.verdict = policy.Verdict("discard", "the guard failed (a re-run has no rework)")
        exp = last.record(n, parent, self.tag, events, pending.agent_s, started, _now())
        self._record(exp, parent=parent)

    def _check_head(self, when: str) -> None:
        """The branch is where the loop left it, or the loop stops (never resetting a person's
        commit away)."""
        try:
            guarded_reset.check_head(self.repo, self.branch, self._head, when)
        except guarded_reset.ForeignWork as exc:
            self.journal.write(Entry(tag=self.tag, branch=self.branch))
            raise LoopStopped(str(exc)) from None

    def _set_aside_in_scope(self, n: int, dirt: dict[str, bytes | None]) -> list[str]:
        """Stash a person's uncommitted in-scope edits found before edit #n (taken out of
        `dirt`); returns the events, said already."""
        mine = [path for path in dirt if scope.matches(path, self.config.scope.files)]
        if not mine:
            return []
        for path in mine:
            del dirt[path]
        what = f"your edit of {', '.join(mine)} before #{n}"
        event = guarded_reset.stash(self.repo, mine, what)
        self._say(f"#{n}: {event}")
        return [event]

    def _set_aside(
        self, n: int, target: str, status: list[Change] | None = None
    ) -> tuple[list[str], list[Change]]:
        """Stash a person's in-scope edits before HEAD moves to `target`; say what is left.
        Returns the events and the changes left in place."""
        events, left = guarded_reset.set_aside(
            self.repo, target, self.config.scope.files, n, status
        )
        paths = {c.path for c in left}
        new = sorted(paths - self._left)
        self._left = paths
        if new:
            events.append(f"your edit of {', '.join(new)} (outside the scope) is left in place")
        for event in events:
            self._say(f"#{n}: {event}")
        return events, left

    def _carries_snapshot(self) -> bool:
        """A discard's status serves the next edit step too, which follows at once; not when a
        person is the edit step (manual mode: they may be editing already)."""
        return not isinstance(self.proposer, ManualProposer)

    # ---- helpers -----------------------------------------------------------------------------

    def _tally(self) -> Tally:
        """This session's counts and best: the ledger keeps them as it records."""
        return self.ledger.tally(self.tag)

    def _best(self) -> Experiment | None:
        return self._tally().best_record

    def _same_tree(self, a: str, b: str) -> bool:
        return self.repo.same_tree(a, b)

    def _ref(self, n: int) -> str:
        return f"{REF_PREFIX}{self.tag}/{n}"

    def _journal(self, step: str, n: int, parent: str, commit: str, **extra: object) -> None:
        entry = Entry(
            tag=self.tag, branch=self.branch, step=step, number=n, parent=parent, commit=commit
        )  # type: ignore[arg-type]
        for key, value in extra.items():
            setattr(entry, key, value)
        self.journal.write(entry)

    def summary(self) -> str:
        return describe.summary(self.tag, self.branch, self._tally())

    def _refresh_counts(self) -> None:
        tally = self._tally()
        self._set(
            counts=tally.counts,
            iteration=max(tally.total - 1, 0),
            best=tally.best,
            best_number=tally.best_number,
            baseline=tally.baseline if tally.total else None,
            sessions=self.sessions(),
        )

    def sessions(self) -> list[SessionSummary]:
        return self.ledger.summaries()

    def _phase(self, phase: Phase, **changes: object) -> None:
        self._set(phase=phase, **changes)

    def _set(self, **changes: object) -> None:
        self.state = msgspec.structs.replace(self.state, **changes)
        self.emit(self.state)

    def _locks(self, locked: bool, touched: list[str] | None = None) -> None:
        """Tell the editor the concrete paths to lock, only when they changed. They are expanded
        again when the tree's files may have changed: a kept path that is new, a listed one gone
        (a discarded new file), or on the first call."""
        paths = self._paths
        listed = set(paths.files) if paths else set()
        if (
            paths is None
            or any(p not in listed for p in touched or [])
            or any(not os.path.lexists(self.root / p) for p in listed)
        ):
            try:
                paths = self._paths = scope.expand_paths(
                    scope.repo_files(self.repo), self.config.scope.files, self.off_limits
                )
            except Exception:  # an unlock must go out even if git fails now
                if locked:
                    raise
        event = LocksChanged(
            root=str(self.root),
            locked=list(paths.files) if locked and paths else [],
            off_limits=list(paths.off_limits) if paths else [],
            reason="the autoresearch loop is running" if locked else "",
        )
        if event == self._locks_sent:
            return
        self._locks_sent = event
        self.emit(event)

    def _say(self, text: str) -> None:
        self.emit(Progress(text))


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _log_end(tail: str) -> str:
    """The end of run.log for a message, or a plain word that there is none."""
    tail = tail[-1500:]
    return (
        f"End of run.log:\n{tail}"
        if tail.strip()
        else "run.log is empty: the command printed nothing."
    )
