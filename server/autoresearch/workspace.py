"""One workspace root: its loop (on its own thread), its records, its observer, its answers.

The server holds one `Workspace` per root in a `Workspaces` registry (no module globals, so a
later coordinator can hold one per git worktree). Every method here may block (git, files,
joining threads); the server calls them off its event loop. Events reach the client through
the server's thread-safe `Client` methods.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from . import chart_series, control, curves, preflight, queries, revision, runlogs, scope
from . import config as cfg
from .attach import Attachment
from .confine import check_state_paths
from .experiment import Experiment
from .lock import LOCK_FILE
from .loop import GUIDANCE_FILE, Loop
from .loop_host import Client, LoopHost, sessions_newest_first
from .measure import RUN_LOG, log_path
from .observer import Observer, Snapshot, observed_state
from .protocol import (
    Ack,
    ChangesResult,
    ChartSeries,
    CurvePoints,
    ExperimentRecorded,
    ExperimentsPage,
    FileAtResult,
    LocksChanged,
    LogResult,
    LoopState,
    Method,
)
from .records import Records
from .repo import Repo, RepoError
from .session_records import by_number

TAG = re.compile(rf"^{revision.TAG_PATTERN}$")
# How long `start` waits for the session setup (branch, .gitignore, results.tsv header), so a
# preflight failure comes back as the request's error rather than only as a notification.
SETUP_WAIT_S = 60.0
DAEMON_LOG = ".autoresearch/daemon.log"
# Texts a request hands over, bounded: they go into prompts, commit messages and results.tsv.
MAX_GUIDANCE_BYTES = 1024 * 1024
MAX_DESCRIPTION_BYTES = 2 * 1024


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
        # The loop started here: running, or ended and still shown until another takes over.
        self._host: LoopHost | None = None
        # A detached loop of this root (its own process) that this daemon relays and controls.
        self._attached: Attachment | None = None
        # How the last detached loop seen here ended: shown until another loop takes over.
        self._ended: LoopState | None = None
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

    def start(
        self, config: cfg.Config | None, limit: int | None, tag: str | None, detach: bool = False
    ) -> LoopState:
        if limit is not None and limit < 1:
            raise ParamError("loop", f"loop must be at least 1 (got {limit}); omit it to run on.")
        if tag is not None and not TAG.match(tag):
            raise ParamError(
                "tag", f"tag {tag!r} must be letters, digits, '.', '_' or '-', e.g. nov25."
            )
        with self._lock:
            if self._host is not None and self._host.live:
                raise WorkspaceError(
                    f"A loop is already running in {self.root} (phase {self._phase()})."
                    " Stop it first."
                )
            attached = self._attachment()
            if attached is not None:
                raise WorkspaceError(
                    f"A loop is already running in {self.root} (detached, pid {attached.pid},"
                    f" phase {attached.state.phase}). Stop it first."
                )
            # A refused start writes nothing: no autoresearch.toml, no .autoresearch/.
            preflight.check_start(self.root, config)
            # An editor loop asks the editor's model through this client: it stays in here.
            if detach and (config or cfg.load(self.root)).agent.kind != "editor":
                return self._start_detached(config, limit, tag)
            host = LoopHost(self.root, self._client, self.records, self.log, self.observer.resume)
            fresh = not (self.root / ".autoresearch").exists()
            (self.root / ".autoresearch").mkdir(exist_ok=True)  # the lock file goes there too
            self._attach_log()
            self.observer.pause()
            try:
                host.start(config, limit, tag)
            except BaseException:
                self.observer.resume()
                if fresh:  # refused by the loop's own checks (the agent): still nothing written
                    self._remove_state_dir()
                raise
            self._host, self._locked_for_other = host, None
            self.records.invalidate()
        self.log.info("loop started in %s (loop=%s, tag=%s)", self.root, limit, tag)
        state = host.wait_settled(SETUP_WAIT_S)
        if state.phase == "failed":
            raise WorkspaceError(state.message)
        return sessions_newest_first(state)

    def stop(self, now: bool) -> LoopState:
        host = self._host
        if host is None or host.loop is None or not host.live:
            attached = self._attachment()
            if attached is not None:
                attached.ask("stop", now=now)
                return attached.state
            return self.state()
        host.stop(now)
        return sessions_newest_first(host.loop.state)

    def pause(self) -> LoopState:
        if (attached := self._attachment()) is not None:
            attached.ask("pause")
            return attached.state
        loop = self._live_loop("pause")
        loop.pause()
        return sessions_newest_first(loop.state)

    def resume(self) -> LoopState:
        if (attached := self._attachment()) is not None:
            attached.ask("resume")
            return attached.state
        loop = self._live_loop("resume")
        loop.resume()
        return sessions_newest_first(loop.state)

    def run_experiment(self, description: str) -> Ack:
        _bounded("description", description, MAX_DESCRIPTION_BYTES)
        host = self._host
        if host is None and (attached := self._attachment()) is not None:
            return attached.run_experiment(description)
        if host is None:
            return Ack(False, f"No loop is running in {self.root}. Start one with agent manual.")
        return host.run_experiment(description)

    def guidance(self, text: str) -> Ack:
        _bounded("text", text, MAX_GUIDANCE_BYTES)
        Repo(self.root).close()  # a folder that is not a repository gets no .autoresearch/
        check_state_paths(self.root)  # nor one whose .autoresearch is a link out of it
        path = self.root / GUIDANCE_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text.strip() + "\n" if text.strip() else "", encoding="utf-8")
        return Ack(True, "the edit step reads it from the next experiment on")

    def close(self) -> None:
        """Client gone: abandon the running experiment (recorded as interrupted), then wait."""
        if self._host is not None:
            self._host.close()
        if self._attached is not None:
            self._attached.close()  # the detached loop runs on
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
        host = self._host
        if host is not None and host.loop is not None and host.live:
            host.loop.stop(now=True)

    # ---- state -------------------------------------------------------------------------------

    def state(self) -> LoopState:
        loop = self._loop_in_view()
        if loop is not None and self._live():
            return sessions_newest_first(loop.state)
        attached = self._attachment()
        if attached is not None:
            return attached.state
        if loop is not None:
            return sessions_newest_first(loop.state)
        if self._ended is not None:
            return self._ended
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
            sessions=self.records.summaries(),
        )
        unread = self.records.warnings()
        if unread:  # never a record left out without a word
            state.message = f"{len(unread)} record(s) cannot be read: {unread[0]}"
        snap = self.observer.snapshot()
        self._sync_locks(snap, config)
        if snap is None:
            if not _is_repo(self.root):
                state.message = f"{self.root} is not a git repository"
            return state
        state.tag, state.branch = snap.tag, snap.branch
        if not snap.external:
            return state
        return observed_state(state, snap)

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

    def chart_series(self, tag: str | None, buckets: int) -> ChartSeries:
        if not 1 <= buckets <= chart_series.MAX_BUCKETS:
            raise ParamError(
                "buckets",
                f"buckets must be between 1 and {chart_series.MAX_BUCKETS} (got {buckets}):"
                " ask for about one per pixel of the chart's width.",
            )
        tag = tag if tag is not None else self._current_tag()
        return chart_series.reduce(str(self.root), tag, self._items(tag), buckets)

    def changes(self, commit: str | None, number: int | None, tag: str | None) -> ChangesResult:
        if commit is None and number is None:
            raise ParamError("commit", "give the experiment's commit or its number.")
        exp: Experiment | None = None
        tag = tag if tag is not None else self._current_tag()
        items = self._items(tag)
        if number is not None:
            exp = by_number(items, number) if number >= 0 else None
            if exp is None:
                raise queries.QueryError(
                    f"Session {tag or '(none)'} has no experiment #{number}"
                    f" ({len(items)} recorded)."
                )
            commit = commit or exp.commit
        elif commit is not None:
            if not commit.strip():
                raise ParamError("commit", "commit is empty: give a commit sha (short or full).")
            commit = _checked(commit.strip())
            exp = _find(items, commit)
        with self._git_lock:
            return queries.changes(self._query_repo(), commit, exp)

    def file_at(self, commit: str, path: str) -> FileAtResult:
        if commit != queries.EMPTY_TREE:
            _checked(commit)
        with self._git_lock:
            return queries.file_at(self._query_repo(), commit, path)

    def curve(self, number: int, tag: str | None) -> CurvePoints:
        """A stored learning curve (thinned to curves.MAX_POINTS); empty when there is none."""
        if tag is not None and not TAG.match(tag):
            raise ParamError(
                "tag", f"tag {tag!r} must be letters, digits, '.', '_' or '-', e.g. nov25."
            )
        if number < 0:
            raise ParamError("number", f"number must not be negative (got {number}).")
        tag = tag if tag is not None else self._current_tag()
        points = curves.read(self.root, tag, number) if TAG.match(tag) else []
        steps, values = [s for s, _ in points], [v for _, v in points]
        return CurvePoints(root=str(self.root), tag=tag, number=number, steps=steps, values=values)

    def run_log(self, number: int | None, tag: str | None, max_bytes: int) -> LogResult:
        if max_bytes < 0:
            raise ParamError("max_bytes", f"max_bytes must not be negative (got {max_bytes}).")
        if number is None:
            live = self.root / RUN_LOG
            if live.is_symlink() and not _inside(live, os.path.realpath(self.root)):
                raise queries.QueryError(
                    f"{RUN_LOG} is a link to a file outside {self.root}: refused. Delete it;"
                    " the next run writes a new one."
                )
            return queries.tail(live, max_bytes, RUN_LOG)
        if tag is not None and not TAG.match(tag):
            raise ParamError(
                "tag", f"tag {tag!r} must be letters, digits, '.', '_' or '-', e.g. nov25."
            )
        tag = tag if tag is not None else self._current_tag()
        runs = os.path.join(os.path.realpath(self.root), ".autoresearch", "runs")
        known = bool(TAG.match(tag))  # a tag read from another tool's records may be anything
        # The log as kept: plain, or gzipped once pruned (runlogs.prune).
        path = runlogs.plain_or_compressed(log_path(self.root, tag, number)) if known else None
        if path is not None and not _inside(path, runs):
            raise queries.QueryError(
                f"The run log of session {tag} #{number} is a link out of .autoresearch/runs/:"
                " refused. Delete that link."
            )
        if path is None or not path.is_file():
            raise queries.QueryError(
                f"No run log kept for experiment #{number} of session {tag or '(none)'}"
                " (only loops run by autoresearch keep one per experiment; run.log holds the"
                " latest)."
            )
        return queries.tail(path, max_bytes, str(path.relative_to(self.root)))

    # ---- someone else's loop ---------------------------------------------------------------

    def _observed(self, snap: Snapshot | None, added: list[Experiment] | None) -> None:
        """results.tsv, the branch or the lock changed, and no loop of ours runs here."""
        if self._attachment() is not None:
            return  # the detached loop's own events say more, and sooner
        with self._lock:
            if self._ended is not None:
                if snap is not None and not snap.external and not snap.holder:
                    return  # our detached session ended: keep showing how
                self._ended = None
            host = self._host
            if host is not None:
                if host.live or snap is None or not snap.external:
                    return  # ours runs, or our finished session: keep showing how it ended
                self._host = None
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
        try:
            paths = scope.lock_paths(self._query_repo(), config) if config else None
        except Exception:  # the other loop enforces its scope anyway; the unlock must go out
            self.log.exception("listing the files in scope failed")
            paths = None
        self._notify(
            Method.LOCKS_CHANGED,
            LocksChanged(
                root=str(self.root),
                locked=paths.files if paths and locked else [],
                off_limits=paths.off_limits if paths else [],
                reason=f"a loop runs in another process ({snap.holder})" if snap and locked else "",
            ),
        )

    # ---- a detached loop --------------------------------------------------------------------

    def _start_detached(
        self, config: cfg.Config | None, limit: int | None, tag: str | None
    ) -> LoopState:
        """Start Loop: the loop gets its own process and outlives this daemon and its editor;
        this daemon attaches to it. A manual loop pauses when its last editor goes."""
        from .detached import check_can_detach, spawn

        # Another loop here: refused before the toml is saved.
        check_can_detach(self.root, config, editor=True)
        if config is not None:
            cfg.save(self.root, config)  # the detached loop reads it
        spawn(self.root, limit, tag, editor=True)
        self._attach_log()  # .autoresearch/ exists now
        self.log.info("detached loop started in %s (loop=%s, tag=%s)", self.root, limit, tag)
        attached = self._attachment()
        if attached is None:
            raise WorkspaceError(
                f"The detached loop in {self.root} ended at once: see {DAEMON_LOG}."
            )
        return attached.state

    def _attachment(self) -> Attachment | None:
        """The detached loop of this root, attached to on first sight; None when none runs."""
        with self._lock:
            if self._attached is not None and self._attached.live:
                return self._attached
            if self._live() or not control.running(self.root):
                return None
            try:
                self._attached = Attachment(
                    self.root, self._client, self.records, self.log, self._detached_ended
                )
            except (control.ControlError, OSError) as exc:
                self.log.info("no detached loop to attach to in %s: %s", self.root, exc)
                return None
            self._attach_log()
            self._ended = None
            if self._host is not None and not self._host.live:
                self._host = None  # an ended loop of this daemon's is no longer the one in view
            return self._attached

    def _detached_ended(self, attached: Attachment) -> None:
        """The detached loop ended (or hung up): its last state stays shown, the scope unlocked."""
        final = attached.state
        with self._lock:
            if self._attached is attached:
                self._attached = None
            # Ended as a loop ends (stopped, failed): shown so. Killed mid-phase: the disk's state.
            self._ended = final if final.phase in ("stopped", "failed") else None
            # A loop killed before it unlocked: unlock unless another loop holds the lock now.
            self._locked_for_other = True
        self.records.invalidate()
        self._sync_locks(self.observer.snapshot(), self._config())
        if self._ended is None:
            self._notify(Method.STATE_CHANGED, self._disk_state())

    # ---- helpers -----------------------------------------------------------------------------

    def _live(self) -> bool:
        return self._host is not None and self._host.live

    def _phase(self) -> str:
        loop = self._host.loop if self._host else None
        return loop.state.phase if loop else "?"

    def _live_loop(self, what: str) -> Loop:
        host = self._host
        if host is None or host.loop is None or not host.live:
            raise WorkspaceError(f"No loop is running in {self.root}: nothing to {what}.")
        return host.loop

    def _loop_in_view(self) -> Loop | None:
        """The running loop, or the one that ended here unless someone else's took over."""
        with self._lock:
            host = self._host
            if host is None or host.live:
                return host.loop if host else None
        snap = self.observer.snapshot()
        with self._lock:
            if snap is not None and snap.external and self._host is host:
                self._host = None
            return self._host.loop if self._host else None

    def _current_tag(self) -> str:
        loop = self._loop_in_view()
        if loop is not None:
            return loop.tag
        snap = self.observer.snapshot()
        if snap is not None and (snap.external or snap.tag in self.records.tags()):
            return snap.tag
        tags = self.records.tags()
        return tags[-1] if tags else ""

    def _items(self, tag: str) -> Sequence[Experiment]:
        loop = self._loop_in_view()
        if loop is not None and tag == loop.tag:
            return self.records.session(tag)
        snap = self.observer.snapshot() if not self._live() else None
        if snap is not None and snap.tag == tag and snap.external:
            return snap.experiments
        return self.records.session(tag)

    def _query_repo(self) -> Repo:
        if self._repo is None:
            self._repo = Repo(self.root)
        return self._repo

    def _config(self) -> cfg.Config | None:
        loop = self._host.loop if self._host else None
        if loop is not None:
            return loop.config
        try:
            return cfg.load(self.root)
        except cfg.ConfigError:
            return None

    def _metric_name(self) -> str | None:
        config = self._config()
        return config.metric.name if config else None

    def _remove_state_dir(self) -> None:
        """Take back the .autoresearch/ a refused start made (its log and lock, nothing else)."""
        if self._log_file is not None:
            self.log.removeHandler(self._log_file)
            self._log_file.close()
            self._log_file = None
        state = self.root / ".autoresearch"
        for name in (Path(DAEMON_LOG).name, Path(LOCK_FILE).name):
            (state / name).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # anything else there is not ours to remove
            state.rmdir()

    def _attach_log(self) -> None:
        if self._log_file is not None:
            return
        try:
            check_state_paths(self.root)  # no log written through a linked .autoresearch
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


def _inside(path: Path, base: str) -> bool:
    """`path`, links followed, is `base` or under it (`base` already a real path)."""
    return os.path.commonpath([base, os.path.realpath(path)]) == base


def _checked(commit: str) -> str:
    try:
        revision.check(commit)
    except revision.RevisionError as exc:
        raise ParamError("commit", str(exc)) from None
    return commit


def _bounded(field: str, text: str, limit: int) -> None:
    size = len(text.encode("utf-8", errors="replace"))
    if size > limit:
        raise ParamError(
            field,
            f"{field} is {size:,} bytes; at most {limit:,} are accepted. Shorten it"
            + (
                " (a summary, or a path to a file the agent can read)."
                if field == "text"
                else " to a line or two: the diff keeps the details."
            ),
        )


def _find(items: Sequence[Experiment], commit: str) -> Experiment | None:
    for exp in reversed(items):
        if exp.commit.startswith(commit) or commit.startswith(exp.commit):
            return exp
    return None


def _is_repo(root: Path) -> bool:
    try:
        Repo(root).close()
        return True
    except RepoError:
        return False
