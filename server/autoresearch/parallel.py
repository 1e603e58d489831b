"""Parallel experiments: a coordinator and one worker per slot (slots.py), each in its own
worktree (worktrees.py) with its own GPUs.

Only the coordinator (the loop's thread) moves the session branch. A worker takes a job: a new
experiment from the current best (edit step, commit, run, judge against that best), or a commit
to measure (a win re-applied onto a best that moved, an experiment interrupted by a kill). Its
result waits for the coordinator, which decides in experiment-number order, so results.tsv reads
as the one-worker loop's does. A win whose parent is still the branch's tip is kept as it is; one
whose parent is not is applied onto the tip (git merge-tree): a conflict is a discard with the
reason, the same tree as measured (or only the loop's own bookkeeping moved meanwhile) is kept
at once, anything else is measured again on the tip before it can be kept. Keeps therefore
strictly improve on the best they are kept onto.

Each experiment in flight has its own journal entry (inflight.py); a resume runs the committed
ones again, renumbered after the last record, and undoes the edits in progress.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from . import describe, edit_step, policy, scope, worktrees
from .agents import usage
from .agents.base import AgentUnavailable, EditOutcome, FailureKind, Proposer
from .attempt import Bench
from .bootstrap import RERUN_EVENT, kill_agent_leftovers, kill_marked
from .config import Config
from .edit_step import EditStep
from .experiment import Experiment
from .inflight import Inflight
from .journal import Entry
from .loop import (
    AGENT_RETRY_WAIT_S,
    MAX_AGENT_FAILURES,
    MAX_CRASH_RETRIES,
    MAX_REWORKS,
    Event,
    Loop,
    LoopStopped,
    _log_end,
    _now,
)
from .notes import NOTES_FILE
from .policy import Verdict
from .protocol import WorkerState
from .repo import BRANCH_PREFIX, REF_PREFIX, Repo, checked_out_branch, git_version
from .runner import Runner
from .session_history import copy_of
from .slots import Slot

# The loop's own commits on the branch that an experiment need not be measured again over.
BOOKKEEPING_FILES = {NOTES_FILE}


class Job(msgspec.Struct):
    """What a worker does next: `sha` empty, a new experiment from `parent` (the branch's tip);
    set, that commit measured as experiment `number` (its `parent` the tip it sits on)."""

    number: int
    parent: str
    best: Experiment | None
    # The session as the job started: its own copy (a History's shares the undecoded records).
    history: Sequence[Experiment]
    others: list[str] = msgspec.field(default_factory=list)
    sha: str = ""
    description: str = ""
    events: list[str] = msgspec.field(default_factory=list)
    params: dict[str, float | str] = msgspec.field(default_factory=dict)
    agent_s: float = 0.0
    cost_usd: float | None = None
    tokens: int | None = None


class Done(msgspec.Struct):
    """A job's end: the experiment to decide, or none (`exp` None: the edit step made nothing
    while the loop stopped), or the error that stops the loop."""

    job: Job
    exp: Experiment | None = None
    error: BaseException | None = None


class ParallelLoop(Loop):
    """The loop with [parallel] workers; one slot also works (a resume of parallel work)."""

    def __init__(
        self,
        root: Path,
        config: Config,
        proposer: Proposer,
        *,
        slots: list[Slot],
        runner: Runner | None = None,
        emit: Callable[[Event], None] | None = None,
        tag: str | None = None,
        limit: int | None = None,
    ) -> None:
        super().__init__(root, config, proposer, runner=runner, emit=emit, tag=tag, limit=limit)
        self.slots = slots
        self.inflight = Inflight(root / ".autoresearch")
        self._cv = threading.Condition()
        self._emit_lock = threading.RLock()
        outer = self.emit
        self.emit = lambda event: self._locked_emit(outer, event)  # type: ignore[method-assign]
        self._queue: list[Job] = []  # commits to measure, before any new experiment
        self._results: dict[int, Done] = {}
        self._flying: dict[int, Job] = {}
        self._next = 0  # the next experiment's number
        self._allocated = 0  # new experiments started (for --loop N)
        self._stopping = ""  # why no new experiment starts ('' while they do)
        self._fatal: BaseException | None = None
        self._closing = False  # the coordinator is done: workers take no job
        self._workers: dict[int, WorkerState] = {
            s.worker: WorkerState(worker=s.worker, gpus=list(s.gpus)) for s in slots
        }
        self._reruns: list[Entry] = []

    # ---- events from many threads --------------------------------------------------------------

    def _locked_emit(self, outer: Callable[[Event], None], event: Event) -> None:
        with self._emit_lock:
            outer(event)

    def _set(self, **changes: object) -> None:
        with self._emit_lock:
            if changes.get("phase") in ("deciding", "committing", "measuring") and any(
                w.number is not None for w in self._workers.values()
            ):
                changes["phase"] = "running"  # workers are busy: deciding one is a moment
            super()._set(**changes)

    def _worker_state(self, worker: int, **changes: object) -> None:
        with self._emit_lock:
            self._workers[worker] = msgspec.structs.replace(self._workers[worker], **changes)
            busy = [w.number for w in self._workers.values() if w.number is not None]
            state = dict(workers=list(self._workers.values()))
            if busy and self.state.phase not in ("stopped", "failed", "paused"):
                state.update(phase="running", current=min(busy))  # type: ignore[arg-type]
                state["message"] = f"{len(busy)}/{len(self._workers)} workers busy"
            super()._set(**state)

    # ---- resume --------------------------------------------------------------------------------

    def _carries_snapshot(self) -> bool:
        return False  # the edit steps are the workers', each in its own worktree

    def _before_start(self) -> None:
        """Experiments a killed loop left in flight: their processes are killed, their refs
        taken off (bootstrap would record them as lost), their commits kept to run again."""
        branch = self.repo.branch() or ""
        if not branch.startswith(BRANCH_PREFIX):
            return
        tag = self.requested_tag or branch[len(BRANCH_PREFIX) :]
        if branch != BRANCH_PREFIX + tag:
            return
        recorded = len(self.ledger.experiments(tag))
        for entry in self.inflight.entries(tag):
            if entry.marker and kill_marked(entry.marker):
                self._say(f"recovered: killed the processes left running by #{entry.number}")
            if entry.number < recorded or entry.step != "committed" or not entry.commit:
                # Recorded before the kill (its entry not yet removed), or an edit in progress
                # (its worktree is cleaned when it is next used).
                self.inflight.remove(tag, entry.number)
                continue
            self._reruns.append(entry)
            ref = f"{REF_PREFIX}{tag}/{entry.number}"
            if (old := self.repo.resolve(ref)) is not None:  # unrecorded: the loop's own ref
                self.repo.delete_ref(ref, old)
        for slot in self.slots:  # an agent a killed loop left editing a worktree
            kill_agent_leftovers(worktrees.path_of(self.root, slot.worker).resolve())

    def _queue_reruns(self) -> None:
        """The experiments a kill interrupted run again, numbered after the last record."""
        for entry in self._reruns:
            pending = entry.record or Experiment(
                number=entry.number, commit=entry.commit, status="crash"
            )
            n = self._next
            self._next += 1
            was = f" (was #{entry.number})" if entry.number != n else ""
            again = any(e.startswith(RERUN_EVENT) for e in pending.events)
            events = [*pending.events, f"{RERUN_EVENT}{was}"]
            self.repo.set_ref(self._ref(n), entry.commit)
            self.inflight.remove(self.tag, entry.number)
            job = Job(
                number=n,
                parent=entry.parent,
                best=self._best(),
                history=copy_of(self.history),
                sha=entry.commit,
                description=pending.description,
                events=events,
                params=pending.params,
            )
            self.inflight.write(self._entry(job, "committed"))
            if again:  # interrupted when it ran again: a crash, as in a one-worker loop
                self._flying[n] = job
                self._results[n] = Done(job, self._interrupted(job))
                self._say(f"recovered: experiment #{entry.number} was interrupted again: a crash")
                continue
            self._queue.append(job)
            self._say(f"recovered: experiment #{entry.number} was in flight: runs again as #{n}")
        self._reruns = []

    def _interrupted(self, job: Job) -> Experiment:
        return msgspec.structs.replace(
            self._pending(job),
            crash_kind="interrupted",
            reason="the daemon stopped during this experiment; interrupted again when run again",
        )

    # ---- the coordinator ---------------------------------------------------------------------

    def _work(self) -> tuple[int, str]:
        self._next = len(self.history)
        self._queue_reruns()
        self._locks(locked=True)
        self._worker_state(self.slots[0].worker)  # the workers, announced idle
        threads = [
            threading.Thread(
                target=self._worker, args=(slot,), name=f"worker {slot.worker}", daemon=True
            )
            for slot in self.slots
        ]
        for t in threads:
            t.start()
        decided, error = 0, None
        try:
            while (done := self._wait_decision()) is not None:
                if done.exp is None:
                    # No experiment under this number (its edit step was stopped): the later
                    # ones cannot be recorded before it. They stay journaled and run again at
                    # the next start.
                    self._say(f"#{done.job.number}: stopped in its edit step: no experiment")
                    break
                if self._decide(done):
                    decided += 1
                    with self._cv:
                        self._flying.pop(done.job.number, None)
                        self._cv.notify_all()
                    self._set(remaining=None if self.limit is None else self.limit - decided)
        except BaseException as exc:
            error = exc
        finally:
            with self._cv:
                self._closing = True
                self._stopping = self._stopping or "stopped"
                if error is not None:
                    self.cancel.set()
                self._cv.notify_all()
            for t in threads:
                t.join()
            self._worker_state(self.slots[0].worker)
        if error is None:
            error = self._fatal
        if error is not None:
            raise error
        why = self._stopping if self._stopping not in ("stopped", "limit") else ""
        return decided, why

    def _wait_decision(self) -> Done | None:
        """The next result to decide, in number order; None when the loop ends here."""
        with self._cv:
            while True:
                if self._fatal is not None:
                    return None
                n = self._next_decision()
                if n in self._results:
                    return self._results.pop(n)
                if self._stopping and not self._flying and not self._queue:
                    return None
                if self.cancel.is_set() and n not in self._flying:
                    return None  # stopped now: a queued measurement never starts
                self._check_stop()
                self._cv.wait(0.5)

    def _next_decision(self) -> int:
        """The number decided next: the lowest in flight (decisions go in number order)."""
        pending = [*self._flying, *(j.number for j in self._queue)]
        return min(pending) if pending else self._next

    def _check_stop(self) -> None:
        """Under the condition: the reasons no new experiment starts."""
        if self._stopping:
            return
        if self._stop.is_set():
            self._stopping = "stopped"
        elif self.limit is not None and self._allocated >= self.limit:
            self._stopping = "limit"
        else:
            self._stopping = self._stop_reason()
        if self._stopping:
            self._cv.notify_all()

    def _take(self, slot: Slot) -> Job | None:
        """The next job for `slot`, waiting while paused; None when the loop ends."""
        with self._cv:
            while True:
                if self._closing or self._fatal is not None or self.cancel.is_set():
                    return None
                if self._queue:
                    job = self._queue.pop(0)
                    self._flying[job.number] = job
                    return job
                self._check_stop()
                if self._stopping:
                    if not self._flying:
                        return None
                    self._cv.wait(0.5)  # a win in flight may still need measuring again
                    continue
                if not self._running.is_set():
                    # Paused once every experiment in flight is decided: then it is true.
                    if not self._flying and self.state.phase != "paused":
                        self._set(phase="paused", current=None, message="paused")
                    self._cv.wait(0.5)
                    continue
                n = self._next
                self._next += 1
                self._allocated += 1
                others = [
                    f"#{w.number} ({_label(w)}): {w.description}"
                    for w in self._workers.values()
                    if w.number is not None and w.description
                ]
                job = Job(
                    number=n,
                    parent=self._head,
                    best=self._best(),
                    history=copy_of(self.history),
                    others=others,
                )
                self._flying[n] = job
                return job

    def _decide(self, done: Done) -> bool:
        """Record the experiment, or queue it to be measured again on the branch's tip."""
        exp = done.exp
        assert exp is not None
        n, head = exp.number, self._head
        if exp.status == "keep" and exp.parent != head and not self._onto_tip(exp, head):
            return False
        then, now = done.job.best, self._best()
        if exp.status == "discard" and then and now and then.number != now.number and exp.reason:
            # Judged against the best when it started, which was kept over meanwhile.
            exp.reason = f"{exp.reason} (against #{then.number}, the best when it started)"
        self._record(exp, parent=head)
        self.inflight.remove(self.tag, n)
        if exp.status == "keep":
            self._locks(locked=True, touched=self.repo.changed_files(exp.parent, exp.commit))
        return True

    def _onto_tip(self, exp: Experiment, head: str) -> bool:
        """A win made on an older best, applied onto the branch's tip `head`. True: `exp` is
        decided (kept on the tip, or a discard); False: it is queued to be measured again."""
        n = exp.number
        moved = self.repo.changed_files(exp.parent, head)
        best = self._best()
        onto = f"#{best.number}" if best is not None else head[:7]
        tree = self.repo.merge_onto(head, exp.commit)
        if tree is None:
            exp.status = "discard"
            exp.reason = (
                f"a win ({exp.reason}) whose change conflicts with {onto}, kept meanwhile"
                f" ({', '.join(moved[:5])})"
            )
            exp.events.append(f"not applied onto {onto}: its change conflicts")
            return True
        same = tree == self.repo.tree_of(exp.commit)
        if same and not set(moved) <= BOOKKEEPING_FILES:
            # The code run is the code that would be kept: judged against the new best.
            verdict = self._judge(exp, best)
            if verdict.status != "keep":
                exp.status = "discard"
                exp.reason = f"no better than {onto}, kept meanwhile ({verdict.reason})"
                return True
            exp.reason = verdict.reason
        sha = self.repo.commit_tree(tree, head, f"autoresearch #{n}: {exp.description}")
        run_again = not (same or set(moved) <= BOOKKEEPING_FILES)
        job = self._run_again(exp, sha, head, best, onto)
        if run_again:  # journaled before the refs move: a kill from here runs it again
            self.inflight.write(self._entry(job, "committed"))
        self.repo.set_ref(self._free_ref(self.repo, n, "measured"), exp.commit)
        self.repo.set_ref(self._ref(n), sha, old=exp.commit)
        if not run_again:
            how = "the same code as run" if same else "only the loop's notes moved"
            exp.events.append(f"applied onto {onto} ({sha[:7]}): {how}")
            exp.commit, exp.parent = sha, head
            return True
        self._say(f"#{n}: won on an older best: run again on {onto}")
        with self._cv:
            self._flying.pop(n, None)
            self._queue.insert(0, job)
            self._cv.notify_all()
        return False

    def _run_again(
        self, exp: Experiment, sha: str, head: str, best: Experiment | None, onto: str
    ) -> Job:
        """The job that runs `sha` (exp's change applied onto `head`) as experiment exp."""
        first = f"{exp.metric:.6g}" if exp.metric is not None else "no metric"
        event = f"won on {exp.parent[:7]} ({first}); applied onto {onto} ({sha[:7]}), run again"
        return Job(
            number=exp.number,
            parent=head,
            best=best,
            history=copy_of(self.history),
            sha=sha,
            description=exp.description,
            events=[*exp.events, event],
            params=exp.params,
            agent_s=exp.agent_s,
            cost_usd=exp.cost_usd,
            tokens=exp.tokens,
        )

    def _judge(self, exp: Experiment, best: Experiment | None) -> Verdict:
        if best is None or best.metric is None:
            return Verdict("discard", "no best to compare with")
        lines = exp.diff.additions - exp.diff.deletions
        c = self.config
        d = c.decision
        return policy.judge(
            exp.metric, best.metric, c.metric.direction, d, self.bench.noise_std, lines
        )

    # ---- a worker ------------------------------------------------------------------------------

    def _worker(self, slot: Slot) -> None:
        main = Repo(self.root)
        tree = worktrees.Worktree(main, slot.worker)
        bench = Bench(
            self.root,
            self.config,
            self.runner,
            self.cancel,
            lambda **changes: self._bench_state(slot, changes),
            self._say,
        )
        bench.on_curve = self._curve
        bench.tag, bench.noise_std, bench.env = self.tag, self.bench.noise_std, slot.env()
        try:
            while (job := self._take(slot)) is not None:
                self._worker_state(
                    slot.worker,
                    number=job.number,
                    parent=job.parent,
                    phase="editing",
                    description=job.description,
                )
                try:
                    exp = self._job(main, tree, bench, slot, job)
                    done = Done(job, exp)
                except BaseException as exc:  # the coordinator stops the loop with it
                    done = Done(job, error=exc)
                self._worker_state(
                    slot.worker,
                    number=None,
                    phase="idle",
                    description="",
                    elapsed_s=None,
                    timeout_s=None,
                )
                with self._cv:
                    if done.error is not None:
                        self._fatal = self._fatal or done.error
                    else:
                        self._results[job.number] = done
                    self._cv.notify_all()
        finally:
            tree.close()
            main.close()

    def _bench_state(self, slot: Slot, changes: dict[str, object]) -> None:
        mine = {k: v for k, v in changes.items() if k in ("phase", "elapsed_s", "timeout_s")}
        if mine:
            self._worker_state(slot.worker, **mine)
        curve = {k: v for k, v in changes.items() if k in ("curve_step", "curve_value")}
        if curve:
            self._set(**curve)

    def _job(
        self, main: Repo, tree: worktrees.Worktree, bench: Bench, slot: Slot, job: Job
    ) -> Experiment | None:
        repo, made = tree.at(job.sha or job.parent)
        bench.cwd = repo.root
        if made or bench.sentinel is None:  # the off-limits files' checksums in this checkout
            bench.sentinel = scope.Sentinel(repo, self.off_limits)
        if job.sha:
            return self._measure(repo, bench, slot, job)
        return self._experiment(main, repo, bench, slot, job)

    def _measure(self, repo: Repo, bench: Bench, slot: Slot, job: Job) -> Experiment:
        n, sha, parent = job.number, job.sha, job.parent
        self._worker_state(slot.worker, phase="running", description=job.description)
        entry = self._entry(job, "committed")
        self.inflight.write(entry)
        started = _now()
        diff = repo.diff_stats(parent, sha)
        attempt = bench.attempt(
            n,
            sha,
            job.description,
            diff,
            "",
            entry.marker,
            lambda: repo.diff_text(parent, sha),
            job.best,
            job.events,
            parent,
        )
        attempt.params = job.params
        if job.params:  # the sweep's constants as this commit holds them (the tip's, and its own)
            from .agents.sweep import params_in

            attempt.params = params_in(
                repo.root, repo.ls_files(), self.config.scope.files, list(job.params)
            )
        if attempt.m.environment:
            raise LoopStopped(f"Stopped: {attempt.m.reason}. {_log_end(attempt.m.tail)}")
        if attempt.guard == "failed":
            attempt.verdict = Verdict("discard", "the guard failed")
        exp = attempt.record(n, parent, self.tag, job.events, job.agent_s, started, _now())
        exp.cost_usd, exp.tokens = job.cost_usd, job.tokens
        exp.worker, exp.gpus = slot.worker, list(slot.gpus)
        return exp

    def _experiment(
        self, main: Repo, repo: Repo, bench: Bench, slot: Slot, job: Job
    ) -> Experiment | None:
        """A new experiment in the worker's worktree `repo`; `main` is the worker's own handle
        on the repository (git handles are not shared between threads)."""
        n, parent = job.number, job.parent
        self._check_disk()
        self.inflight.write(self._entry(job, "editing"))
        editor = EditStep(repo, self.ledger, self.proposer, self.tag, watch_results=False)
        events: list[str] = []
        costs: list[EditOutcome] = []
        started, agent_s = _now(), 0.0
        failure: tuple[str, FailureKind] | None = None
        kept: set[str] = set()
        retries = reworks = failures = 0
        last = None
        while True:
            # The session's guidance is the repository's; the edit is the worktree's.
            ctx = edit_step.context(
                self.root, self._agent_config, job.history, job.best, failure, retries + reworks
            )
            ctx.root, ctx.number, ctx.others, ctx.env = repo.root, n, job.others, slot.env()
            self._worker_state(slot.worker, phase="editing")
            try:
                edit = editor.call(ctx, None, parent, self.off_limits, kept, self.cancel, {}, None)
            except AgentUnavailable as exc:
                raise LoopStopped(f"Stopped: {exc}") from None
            outcome, allowed = edit.outcome, edit.enforcement.allowed
            agent_s += outcome.agent_s
            costs.append(outcome)
            events += edit.enforcement.events
            for event in edit.enforcement.events:
                self._say(f"#{n}: {event}")
            if self.cancel.is_set():
                return None
            if not allowed:
                if last is not None:
                    events.append(f"attempt {retries + reworks + 1} left nothing to run")
                    break
                why, failure = edit_step.nothing_to_run(edit)
                if outcome.after_decision:  # starts again from the tip once one is decided
                    self._say(f"#{n} ({slot.label}) waits for a decision: {why}")
                    failure = None
                    if not self._wait_for_a_decision():
                        return None
                    job = self._refreshed(job)
                    parent = job.parent
                    if not repo.checkout_clean(parent):
                        raise LoopStopped(
                            f"git could not put worker {slot.worker}'s checkout on {parent[:7]}"
                        )
                    self.inflight.write(self._entry(job, "editing"))
                    continue
                self._say(f"#{n} ({slot.label}): no experiment: {why}")
                if outcome.error:
                    failures += 1
                    if failures >= MAX_AGENT_FAILURES:
                        raise LoopStopped(
                            f"Stopped: the agent failed {failures} times in a row (last: {why})."
                            " Run its command by hand to see why (API key, network, quota,"
                            f" agent.timeout), then start the loop again.\n{outcome.output[-1500:]}"
                        )
                    self._stop.wait(AGENT_RETRY_WAIT_S)
                with self._cv:
                    stopping = bool(self._stopping)
                if stopping:
                    return None
                continue
            failures = 0
            description = outcome.description or describe.diff_summary(repo, parent, allowed)
            self._worker_state(slot.worker, phase="committing", description=description)
            sha = repo.commit(
                f"autoresearch #{n}: {description}", allowed, tracked=not edit.enforcement.added
            )
            if last is not None and repo.same_tree(sha, last.sha):
                events.append(f"attempt {retries + reworks + 1} is the same code: not run again")
                break
            touched = edit.enforcement.off_limits
            invalid = f"off-limits file {', '.join(touched)} was edited" if touched else ""
            pending = Job(
                number=n,
                parent=parent,
                best=job.best,
                history=[],
                sha=sha,
                description=description,
                events=list(events),
                params=outcome.params,
            )
            entry = self._entry(pending, "committed")
            self.inflight.write(entry)  # before the ref: a kill between leaves it to run again
            main.set_ref(self._ref(n), sha, old=last.sha if last else None)
            self._say(f"#{n} started on {slot.label}: {description}")
            self._worker_state(slot.worker, phase="running")
            last = bench.attempt(
                n,
                sha,
                description,
                repo.diff_stats(parent, sha),
                invalid,
                entry.marker,
                lambda sha=sha, parent=parent: repo.diff_text(parent, sha),
                job.best,
                events,
                parent,
            )
            last.params = outcome.params
            if last.m.environment:
                raise LoopStopped(f"Stopped: {last.m.reason}. {_log_end(last.m.tail)}")
            if last.m.crash_kind and last.m.trivial and retries < MAX_CRASH_RETRIES:
                retries += 1
                label, failure = self._back_to_edit(n, last, retries, events)
                self._retire(main, n, label, sha)
                repo.reset_mixed(parent)  # the broken change stays in the files, to be fixed
                kept = set(repo.changed_files(parent, sha))
                continue
            if last.guard == "failed" and reworks < MAX_REWORKS:
                reworks += 1
                label, failure = self._back_to_edit(n, last, reworks, events)
                self._retire(main, n, label, sha)
                if not repo.checkout_clean(parent):  # a rework starts from the parent again
                    raise LoopStopped(f"git could not put worker {slot.worker}'s checkout back")
                kept = set()
                continue
            break
        if last.guard == "failed":
            tries = f"{reworks} rework{'s' if reworks != 1 else ''}"
            last.verdict = Verdict("discard", f"the guard failed after {tries}")
        exp = last.record(n, parent, self.tag, events, agent_s, started, _now())
        exp.cost_usd, exp.tokens = usage.total(costs)
        exp.worker, exp.gpus = slot.worker, list(slot.gpus)
        return exp

    def _retire(self, main: Repo, n: int, label: str, sha: str) -> None:
        """A retried attempt stays reviewable under `<n>-<label>`, its logs beside the next's."""
        main.set_ref(self._free_ref(main, n, label), sha)
        self._keep_logs(n, label)

    def _free_ref(self, repo: Repo, n: int, label: str) -> str:
        """`<n>-<label>`, or -2, -3, ... when a renumbered experiment of a resume took it."""
        base = f"{self._ref(n)}-{label}"
        ref, i = base, 1
        while repo.resolve(ref) is not None:
            i += 1
            ref = f"{base}-{i}"
        return ref

    def _wait_for_a_decision(self) -> bool:
        """Until the coordinator records an experiment; False when the loop stops first."""
        with self._cv:
            seen = len(self.history)
            while len(self.history) == seen:  # one numbered before it is in flight (the sweep)
                if self._stop.is_set() or self._closing or self.cancel.is_set():
                    return False
                self._cv.wait(0.5)
            return True

    def _refreshed(self, job: Job) -> Job:
        """`job` started again from the session as it is now: the branch's tip, its best."""
        with self._cv:
            return msgspec.structs.replace(
                job, parent=self._head, best=self._best(), history=copy_of(self.history)
            )

    def _pending(self, job: Job) -> Experiment:
        """What a resume records or runs again of `job`, until its decision."""
        return Experiment(
            number=job.number,
            commit=job.sha,
            status="crash",
            description=job.description,
            tag=self.tag,
            parent=job.parent,
            events=list(job.events),
            params=job.params,
        )

    def _entry(self, job: Job, step: str) -> Entry:
        record = self._pending(job)
        return Entry(
            tag=self.tag,
            branch=self.branch,
            step=step,  # type: ignore[arg-type]
            number=job.number,
            parent=job.parent,
            commit=job.sha,
            record=record if job.sha else None,
            marker=uuid.uuid4().hex,
        )


def _label(w: WorkerState) -> str:
    if not w.gpus:
        return f"worker {w.worker}"
    return f"worker {w.worker}, GPU {','.join(str(g) for g in w.gpus)}"


def resumes_in_flight(root: Path, tag: str | None) -> bool:
    """A parallel loop's experiments were left in flight on the branch checked out (or on
    `tag`): the start runs them again, whatever [parallel] says now."""
    branch = checked_out_branch(root) or ""
    if not branch.startswith(BRANCH_PREFIX):
        return False
    session = tag or branch[len(BRANCH_PREFIX) :]
    return branch == BRANCH_PREFIX + session and bool(
        Inflight(root / ".autoresearch").entries(session)
    )


def check_git(root: Path) -> None:
    """Parallel workers re-apply wins with `git merge-tree --write-tree` (git 2.38+)."""
    version, words = git_version(root)
    if version < (2, 38):
        raise ValueError(
            f"Parallel workers need git 2.38 or newer (for git merge-tree --write-tree); this is"
            f" {words}. Update git, or set parallel.workers = 1."
        )


__all__ = ["Done", "Job", "ParallelLoop", "check_git", "resumes_in_flight"]
