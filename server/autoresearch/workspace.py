"""One workspace root: its loop (on its own thread), its records, its observer, its answers.

The server holds one `Workspace` per root in a `Workspaces` registry (no module globals, so a
later coordinator can hold one per git worktree). Every method here may block (git, files,
joining threads); the server calls them off its event loop. Events reach the client through
`notify`, which the server makes thread-safe.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from pathlib import Path
from typing import Protocol

import msgspec

from . import config as cfg
from . import queries
from .agents import make_proposer
from .agents.base import Proposer
from .agents.manual import ManualProposer
from .experiment import Experiment
from .gpu import gpu_memory_of
from .lock import LockError, RepoLock
from .loop import GUIDANCE_FILE, Event, Loop, Progress
from .measure import RUN_LOG, log_path
from .observer import Observer, Snapshot
from .protocol import (
    Ack,
    ChangesResult,
    Counts,
    ExperimentRecorded,
    ExperimentsPage,
    FileAtResult,
    GpuStatus,
    LocksChanged,
    LogAppended,
    LogResult,
    LoopState,
    Method,
    SessionSummary,
)
from .records import Records
from .repo import Repo, RepoError
from .runner import LocalRunner
from .tailer import LogTailer


class Client(Protocol):
    """What a workspace needs from the server; every method is callable from any thread."""

    def post(self, method: str, payload: msgspec.Struct) -> None:
        """Send a notification."""
        ...

    def say(self, text: str) -> None:
        """A line for people (the loop's progress lines), shown in the client's log."""
        ...

    def gpu_status(self) -> GpuStatus:
        """The GPU monitor's latest reading."""
        ...


TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# How long `start` waits for the session setup (branch, .gitignore, results.tsv header), so a
# preflight failure comes back as the request's error rather than only as a notification.
SETUP_WAIT_S = 60.0
# An elapsed-time-only state change is sent at most this often.
TICK_S = 1.0
# On exit: how long to wait for a loop to record its abandoned experiment.
CLOSE_WAIT_S = 30.0
DAEMON_LOG = ".autoresearch/daemon.log"


class ParamError(ValueError):
    """A request parameter is wrong; `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class WorkspaceError(RuntimeError):
    """A request this workspace cannot do now; the message says why and what to do."""


class Workspace:
    def __init__(self, root: Path, client: Client) -> None:
        self.root = root
        self._client = client
        self._notify = client.post
        self._lock = threading.RLock()
        self._loop: Loop | None = None
        self._proposer: Proposer | None = None
        self._thread: threading.Thread | None = None
        self._repo_lock: RepoLock | None = None
        self._settled = threading.Event()
        self._tailer: LogTailer | None = None
        self._log_numbers: dict[int, int | None] = {}
        self._sent: LoopState | None = None
        self._sent_at = 0.0
        self._git_lock = threading.Lock()
        self._repo: Repo | None = None
        # Whether the scope was reported locked for a loop that another process runs here.
        self._locked_for_other: bool | None = None
        self.log = logging.getLogger(f"autoresearch.workspace.{abs(hash(str(root)))}")
        self._log_file: logging.Handler | None = None
        if (root / ".autoresearch").is_dir():
            self._attach_log()
        self.records = Records(root)
        self.observer = Observer(root, self.records, self._metric_name, self._observed)
        self.observer.start()

    # ---- loop control ------------------------------------------------------------------------

    def start(self, config: cfg.Config | None, limit: int | None, tag: str | None) -> LoopState:
        if limit is not None and limit < 1:
            raise ParamError("loop", f"loop must be at least 1 (got {limit}); omit it to run on.")
        if tag is not None and not TAG.match(tag):
            raise ParamError(
                "tag", f"tag {tag!r} must be letters, digits, '.', '_' or '-', e.g. nov25."
            )
        with self._lock:
            if self._live():
                raise WorkspaceError(
                    f"A loop is already running in {self.root} (phase"
                    f" {self._loop.state.phase if self._loop else '?'}). Stop it first."
                )
            self.observer.pause()
            try:
                lock = _acquire(RepoLock(self.root))
            except BaseException:
                self.observer.resume()
                raise
            try:
                loop, proposer = self._make_loop(config, limit, tag)
            except BaseException:
                lock.release()
                self.observer.resume()
                raise
            self._attach_log()
            self._repo_lock, self._loop, self._proposer, self._sent = lock, loop, proposer, None
            self._locked_for_other = None
            self._settled.clear()
            self.records.invalidate()
            # Created now, so the run.log of an earlier run is skipped and each new one followed.
            self._tailer = LogTailer(self.root / RUN_LOG, self._log_appended).start()
            self._thread = threading.Thread(
                target=self._run, args=(loop,), name=f"loop {self.root.name}", daemon=True
            )
            self._thread.start()
        self.log.info("loop started in %s (loop=%s, tag=%s)", self.root, limit, tag)
        self._settled.wait(SETUP_WAIT_S)
        state = loop.state
        if state.phase == "failed":
            raise WorkspaceError(state.message)
        return self._shape(state)

    def _make_loop(
        self, config: cfg.Config | None, limit: int | None, tag: str | None
    ) -> tuple[Loop, Proposer]:
        if config is not None:
            cfg.save(self.root, config)
        else:
            config = cfg.load(self.root)
        repo = Repo(self.root)
        try:
            tracked = repo.ls_files()
        finally:
            repo.close()
        proposer = make_proposer(config, self.root, tracked)
        runner = LocalRunner(
            gpu_sampler=lambda pids: gpu_memory_of(pids, self._client.gpu_status())
        )
        loop = Loop(
            self.root, config, proposer, runner=runner, emit=self._on_event, tag=tag, limit=limit
        )
        return loop, proposer

    def _run(self, loop: Loop) -> None:
        try:
            loop.run()
        except Exception as exc:
            self.log.warning("loop in %s ended: %s", self.root, exc)
        finally:
            self._settled.set()
            if self._tailer is not None:
                self._tailer.stop()
                self._tailer = None
            if self._repo_lock is not None:
                self._repo_lock.release()
            self.observer.resume()
            self._flush_state()
            self.log.info("loop in %s: %s", self.root, loop.state.phase)

    def stop(self, now: bool) -> LoopState:
        with self._lock:
            loop, proposer = self._loop, self._proposer
            if loop is None or not self._live():
                return self.state()
            loop.stop(now=now)
            if not now and isinstance(proposer, ManualProposer):
                # "After the current experiment": while a person has not started one, there is
                # none to finish, and the manual edit step would wait for them forever.
                threading.Thread(
                    target=self._stop_when_waiting, args=(loop, proposer), daemon=True
                ).start()
            return self._shape(loop.state)

    def _stop_when_waiting(self, loop: Loop, proposer: ManualProposer) -> None:
        while self._live():
            if proposer.waiting.wait(0.1):
                loop.stop(now=True)
                return

    def pause(self) -> LoopState:
        loop = self._live_loop("pause")
        loop.pause()
        return self._shape(loop.state)

    def resume(self) -> LoopState:
        loop = self._live_loop("resume")
        loop.resume()
        return self._shape(loop.state)

    def run_experiment(self, description: str) -> Ack:
        loop, proposer = self._loop, self._proposer
        if loop is None or not self._live():
            return Ack(
                False, f"No loop is running in {self.root}. Start one with the manual agent."
            )
        if not isinstance(proposer, ManualProposer):
            return Ack(
                False,
                f"The loop's agent is {loop.config.agent.kind}: it edits by itself. Run"
                " Experiment is for the manual agent.",
            )
        if proposer.submit(description):
            return Ack(True, "running the experiment")
        return Ack(
            False,
            f"The loop is not waiting for an edit (phase {loop.state.phase}). Run Experiment"
            " when it asks for one.",
        )

    def guidance(self, text: str) -> Ack:
        path = self.root / GUIDANCE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.strip() + "\n" if text.strip() else "", encoding="utf-8")
        return Ack(True, "the edit step reads it from the next experiment on")

    def close(self) -> None:
        """Client gone: abandon the running experiment (recorded as interrupted), then wait."""
        loop, thread = self._loop, self._thread
        if loop is not None and thread is not None and thread.is_alive():
            loop.stop(now=True)
            thread.join(CLOSE_WAIT_S)
        self.observer.stop()
        with self._git_lock:
            if self._repo is not None:
                self._repo.close()
                self._repo = None
        if self._log_file is not None:
            self.log.removeHandler(self._log_file)
            self._log_file.close()

    def begin_close(self) -> None:
        """`shutdown` came: start abandoning now, so `exit` has little left to wait for."""
        loop = self._loop
        if loop is not None and self._live():
            loop.stop(now=True)

    # ---- state -------------------------------------------------------------------------------

    def state(self) -> LoopState:
        loop = self._loop_in_view()
        if loop is not None:
            return self._shape(loop.state)
        return self._disk_state()

    def _disk_state(self) -> LoopState:
        config = self._config()
        direction = config.metric.direction if config else ""
        state = LoopState(
            root=str(self.root),
            phase="idle",
            mode="none",
            metric=config.metric.name if config else "",
            direction=direction,
            agent=config.agent.kind if config else "",
            sessions=self.records.summaries(direction or "lower"),
        )
        snap = self.observer.snapshot()
        self._sync_locks(snap, config)
        if snap is None:
            if not _is_repo(self.root):
                state.message = f"{self.root} is not a git repository"
            return state
        state.tag, state.branch = snap.tag, snap.branch
        if not snap.external:
            return state
        return _observed_state(state, snap)

    def _shape(self, state: LoopState) -> LoopState:
        # Sessions newest first, as the results tree lists them (the loop keeps file order).
        return msgspec.structs.replace(state, sessions=list(reversed(state.sessions)))

    # ---- queries -----------------------------------------------------------------------------

    def experiments(
        self, tag: str | None, offset: int, limit: int, newest_first: bool
    ) -> ExperimentsPage:
        if offset < 0:
            raise ParamError("offset", f"offset must not be negative (got {offset}).")
        if not 0 <= limit <= 10_000:
            raise ParamError("limit", f"limit must be between 0 and 10000 (got {limit}).")
        tag = tag if tag is not None else self._current_tag()
        items = self._items(tag)
        return ExperimentsPage(
            root=str(self.root),
            tag=tag,
            total=len(items),
            offset=offset,
            items=queries.page(items, offset, limit, newest_first),
        )

    def changes(self, commit: str | None, number: int | None, tag: str | None) -> ChangesResult:
        if commit is None and number is None:
            raise ParamError("commit", "give the experiment's commit or its number.")
        exp: Experiment | None = None
        tag = tag if tag is not None else self._current_tag()
        items = self._items(tag)
        if number is not None:
            if not 0 <= number < len(items):
                raise queries.QueryError(
                    f"Session {tag or '(none)'} has no experiment #{number}"
                    f" ({len(items)} recorded)."
                )
            exp = items[number]
            commit = commit or exp.commit
        elif commit is not None:
            if not commit.strip():
                raise ParamError("commit", "commit is empty: give a commit sha (short or full).")
            exp = _find(items, commit.strip())
        with self._git_lock:
            return queries.changes(self._query_repo(), commit, exp)

    def file_at(self, commit: str, path: str) -> FileAtResult:
        with self._git_lock:
            return queries.file_at(self._query_repo(), commit, path)

    def run_log(self, number: int | None, tag: str | None, max_bytes: int) -> LogResult:
        if max_bytes < 0:
            raise ParamError("max_bytes", f"max_bytes must not be negative (got {max_bytes}).")
        if number is None:
            return queries.tail(self.root / RUN_LOG, max_bytes, RUN_LOG)
        tag = tag if tag is not None else self._current_tag()
        path = log_path(self.root, tag, number)
        if not path.exists():
            raise queries.QueryError(
                f"No run log kept for experiment #{number} of session {tag or '(none)'}"
                " (only loops run by autoresearch keep one per experiment; run.log holds the"
                " latest)."
            )
        return queries.tail(path, max_bytes, str(path.relative_to(self.root)))

    # ---- events from the loop's thread -------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        # Never let a notification problem break the loop: it runs on regardless of the client.
        try:
            if isinstance(event, LoopState):
                self._on_state(event)
            elif isinstance(event, ExperimentRecorded):
                self.records.add(event.experiment)
                self._notify(Method.EXPERIMENT_RECORDED, event)
            elif isinstance(event, LocksChanged):
                self._notify(Method.LOCKS_CHANGED, event)
            elif isinstance(event, Progress):
                self.log.info("%s", event.text)
                self._client.say(f"{self.root.name}: {event.text}")
        except Exception:
            self.log.exception("forwarding a loop event failed")

    def _on_state(self, state: LoopState) -> None:
        previous = self._sent
        if state.phase not in ("idle", "setup"):
            if previous is not None and previous.phase == "setup":
                self.records.invalidate()  # setup may have reconciled or recovered rows
            self._settled.set()
        now = time.monotonic()
        if (
            previous is not None
            and now - self._sent_at < TICK_S
            and _same_but_time(previous, state)
        ):
            return
        self._sent, self._sent_at = state, now
        self._notify(Method.STATE_CHANGED, self._shape(state))

    def _flush_state(self) -> None:
        loop = self._loop
        if loop is not None and loop.state != self._sent:
            self._sent = loop.state
            self._notify(Method.STATE_CHANGED, self._shape(loop.state))

    def _log_appended(self, inode: int, text: str) -> None:
        if inode not in self._log_numbers:
            if len(self._log_numbers) > 64:
                self._log_numbers.clear()
            self._log_numbers[inode] = self._number_of_log(inode)
        event = LogAppended(root=str(self.root), number=self._log_numbers[inode], text=text)
        self._notify(Method.LOG_APPENDED, event)

    def _number_of_log(self, inode: int) -> int | None:
        """Which experiment a run.log belongs to: the runs/ file it is a hard link of. (The
        loop's current number is not enough: the last chunk of a run may be read after the
        next one started.)"""
        loop = self._loop
        current = loop.state.current if loop is not None else None
        if loop is None or current is None:
            return None
        runs = log_path(self.root, loop.tag, 0).parent
        for n in (current, current - 1):
            # <tag>-<n>.log, and its noise/confirmation/guard siblings <tag>-<n>.<what>.log
            for path in [log_path(self.root, loop.tag, n), *runs.glob(f"{loop.tag}-{n}.*.log")]:
                try:
                    if path.stat().st_ino == inode:
                        return n
                except OSError:
                    continue
        return None

    def _observed(self, snap: Snapshot | None, added: list[Experiment] | None) -> None:
        """results.tsv, the branch or the lock changed, and no loop of ours runs here."""
        with self._lock:
            if self._live():
                return
            if self._loop is not None:
                if snap is None or not snap.external:
                    return  # our finished session: keep showing how it ended
                self._loop = self._proposer = None
        if snap is not None and added:
            for exp in added:
                self._notify(
                    Method.EXPERIMENT_RECORDED,
                    ExperimentRecorded(root=str(self.root), tag=snap.tag, experiment=exp),
                )
        self._notify(Method.STATE_CHANGED, self._disk_state())

    def _sync_locks(self, snap: Snapshot | None, config: cfg.Config | None) -> None:
        """Our loop run by another process (`autoresearch run` in a terminal) locks the scope
        in the editor as ours does; the lock file says whether it still runs."""
        locked = bool(snap and snap.holder and config)
        with self._lock:
            if self._live() or locked == self._locked_for_other:
                return
            was = self._locked_for_other
            self._locked_for_other = locked
        if was is None and not locked:
            return  # nothing was locked: nothing to undo
        self._notify(
            Method.LOCKS_CHANGED,
            LocksChanged(
                root=str(self.root),
                locked=list(config.scope.files) if config and locked else [],
                off_limits=list(config.scope.off_limits) if config else [],
                reason=f"a loop runs in another process ({snap.holder})" if snap and locked else "",
            ),
        )

    # ---- helpers -----------------------------------------------------------------------------

    def _live(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _live_loop(self, what: str) -> Loop:
        loop = self._loop
        if loop is None or not self._live():
            raise WorkspaceError(f"No loop is running in {self.root}: nothing to {what}.")
        return loop

    def _loop_in_view(self) -> Loop | None:
        """The running loop, or the one that ended here unless someone else's took over."""
        with self._lock:
            loop = self._loop
            if loop is None or self._live():
                return loop
        snap = self.observer.snapshot()
        with self._lock:
            if snap is not None and snap.external and not self._live():
                self._loop = self._proposer = None
            return self._loop

    def _current_tag(self) -> str:
        loop = self._loop_in_view()
        if loop is not None:
            return loop.tag
        snap = self.observer.snapshot()
        if snap is not None and (snap.external or snap.tag in self.records.tags()):
            return snap.tag
        tags = self.records.tags()
        return tags[-1] if tags else ""

    def _items(self, tag: str) -> list[Experiment]:
        loop = self._loop_in_view()
        if loop is not None and tag == loop.tag:
            return self.records.session(tag)
        snap = self.observer.snapshot() if loop is None or not self._live() else None
        if snap is not None and snap.tag == tag and snap.external:
            return snap.experiments
        return self.records.session(tag)

    def _query_repo(self) -> Repo:
        if self._repo is None:
            self._repo = Repo(self.root)
        return self._repo

    def _config(self) -> cfg.Config | None:
        loop = self._loop
        if loop is not None:
            return loop.config
        try:
            return cfg.load(self.root)
        except cfg.ConfigError:
            return None

    def _metric_name(self) -> str | None:
        config = self._config()
        return config.metric.name if config else None

    def _attach_log(self) -> None:
        if self._log_file is not None:
            return
        try:
            handler = logging.FileHandler(self.root / DAEMON_LOG, encoding="utf-8")
        except OSError:
            return
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        self.log.addHandler(handler)
        self._log_file = handler


class Workspaces:
    """The roots this daemon serves, created on first use, keyed by their real path."""

    def __init__(self, client: Client) -> None:
        self._client = client
        self._lock = threading.Lock()
        self._by_root: dict[str, Workspace] = {}

    def get(self, root: str) -> Workspace:
        path = Path(root)
        if not path.is_absolute():
            raise ParamError("root", f"root must be an absolute path (got {root!r}).")
        if not path.is_dir():
            raise ParamError("root", f"root {root} is not a directory.")
        key = os.path.realpath(path)
        with self._lock:
            ws = self._by_root.get(key)
            if ws is None:
                ws = self._by_root[key] = Workspace(path, self._client)
            return ws

    def all(self) -> list[Workspace]:
        with self._lock:
            return list(self._by_root.values())


def _acquire(lock: RepoLock) -> RepoLock:
    """Take the repository's loop lock. A status probe (`held_elsewhere`, by an observer or
    `autoresearch status`) holds a shared lock for microseconds: retry briefly before
    believing that another loop runs."""
    for _ in range(3):
        try:
            lock.acquire("autoresearch serve (VS Code)")
            return lock
        except LockError:
            time.sleep(0.05)
    lock.acquire("autoresearch serve (VS Code)")
    return lock


def _observed_state(state: LoopState, snap: Snapshot) -> LoopState:
    exps = snap.experiments
    counts = Counts()
    for exp in exps[1:]:
        setattr(counts, exp.status, getattr(counts, exp.status) + 1)
    best = _best(exps, state.direction)
    summary = SessionSummary(
        tag=snap.tag,
        branch=snap.branch,
        total=len(exps),
        counts=counts,
        best=best.metric if best else None,
        best_number=best.number if best else None,
    )
    who = f"a loop in another process ({snap.holder})" if snap.holder else "another tool"
    return msgspec.structs.replace(
        state,
        mode="observer",
        metric=snap.metric,
        iteration=max(len(exps) - 1, 0),
        counts=counts,
        best=summary.best,
        best_number=summary.best_number,
        baseline=exps[0].metric if exps else None,
        message=f"watching results.tsv on {snap.branch}, written by {who}",
        sessions=[summary, *[s for s in state.sessions if s.tag != snap.tag]],
    )


def _best(exps: list[Experiment], direction: str) -> Experiment | None:
    keeps = [e for e in exps if e.status == "keep" and e.metric is not None]
    if not keeps:
        return None
    if direction == "lower":
        return min(keeps, key=lambda e: e.metric or 0.0)
    if direction == "higher":
        return max(keeps, key=lambda e: e.metric or 0.0)
    return keeps[-1]  # direction unknown: in the seed's loop every keep beats the one before


def _find(items: list[Experiment], commit: str) -> Experiment | None:
    for exp in reversed(items):
        if exp.commit.startswith(commit) or commit.startswith(exp.commit):
            return exp
    return None


def _same_but_time(a: LoopState, b: LoopState) -> bool:
    return msgspec.structs.replace(a, elapsed_s=None) == msgspec.structs.replace(b, elapsed_s=None)


def _is_repo(root: Path) -> bool:
    try:
        Repo(root).close()
        return True
    except RepoError:
        return False
