"""Observer mode: someone else's loop (a coding agent following the autoresearch skill, or an
`autoresearch run` in a terminal), read from results.tsv and git.

A thread polls the stat of results.tsv, .git/HEAD and the loop lock about once a second (no
inotify: it must work the same over Remote-SSH and network file systems) and rebuilds the
snapshot only when one of them changed. Commits are resolved in two batched git calls per
change, so a table of 10,000 rows costs two processes, not 20,000.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from . import repo, results_tsv
from .experiment import Experiment
from .lock import RepoLock
from .protocol import LoopState, SessionSummary
from .records import Records
from .repo import BRANCH_PREFIX
from .session_records import Tally, by_number, tally_of

log = logging.getLogger(__name__)

JSONL = ".autoresearch/experiments.jsonl"

# (full sha, parent sha or "") by the commit as results.tsv spells it.
Resolved = dict[str, tuple[str, str]]
Stamp = tuple[object, ...]


class Snapshot(msgspec.Struct):
    tag: str
    branch: str
    # The metric's column name in results.tsv (e.g. val_bpb in Karpathy's files).
    metric: str
    # Our own session's are read from the records when a page asks (records.SessionView).
    experiments: Sequence[Experiment]
    # True when the rows are not all a finished session of this tool: someone else writes them.
    external: bool
    # The session's counts and best, kept as its records (or rows) were read.
    tally: Tally
    # Who holds the loop lock, when another process runs our loop here.
    holder: str | None = None
    # Rows of results.tsv that cannot be read, one line each with its line number.
    warnings: list[str] = msgspec.field(default_factory=list)


# Called with the new snapshot and the rows appended since the last one (None: not an append,
# e.g. another branch was checked out or the table was rewritten).
OnChange = Callable[[Snapshot | None, list[Experiment] | None], None]


class Observer:
    def __init__(
        self,
        root: Path,
        records: Records,
        metric_name: Callable[[], str | None],
        on_change: OnChange,
        interval: float = 1.0,
    ) -> None:
        self.root = root
        self._records = records
        self._metric_name = metric_name
        self._on_change = on_change
        self._interval = interval
        self._resolved: Resolved = {}
        self._lock = threading.Lock()
        self._stamp: Stamp | None = None
        self._snapshot: Snapshot | None = None
        self._stopping = threading.Event()
        self._paused = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._watch, name=f"observer {self.root.name}", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)

    def pause(self) -> None:
        """A loop of this daemon runs here: it tells the client itself."""
        self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False
            self._stamp = None  # rebuild silently: the loop's own events told the story

    def snapshot(self) -> Snapshot | None:
        """The current snapshot, refreshed first if the files changed since the last poll."""
        self.check(notify=False)
        return self._snapshot

    def check(self, notify: bool = True) -> None:
        with self._lock:
            stamp = self._read_stamp()
            if stamp == self._stamp:
                return
            first = self._stamp is None
            if first or stamp[2] != self._stamp[2]:  # type: ignore[index]
                self._records.invalidate()  # another process wrote experiments.jsonl
            self._stamp = stamp
            before = self._snapshot
            try:
                after = self._build()
            except results_tsv.ResultsError as exc:
                log.warning("observer: %s", exc)
                after = None
            except Exception:
                log.exception("observer: cannot read %s", self.root)
                after = None
            self._snapshot = after
        if notify and not first:
            self._on_change(after, _appended(before, after))

    def _watch(self) -> None:
        while not self._stopping.wait(self._interval):
            if self._paused:
                continue
            try:
                self.check()
            except Exception:
                log.exception("observer: polling %s failed", self.root)

    def _read_stamp(self) -> Stamp:
        parts: list[object] = []
        head = repo.head_file(self.root)
        for path in (self.root / results_tsv.RESULTS_FILE, head, self.root / JSONL):
            try:
                st = path.stat()
                parts.append((st.st_mtime_ns, st.st_size, st.st_ino))
            except OSError:
                parts.append(None)
        parts.append(RepoLock(self.root).held_elsewhere() if parts[1] is not None else None)
        return tuple(parts)

    def _build(self) -> Snapshot | None:
        branch = repo.checked_out_branch(self.root)
        if branch is None:
            return None
        path = self.root / results_tsv.RESULTS_FILE
        on_session_branch = branch.startswith(BRANCH_PREFIX)
        if not path.exists() and not on_session_branch:
            return None
        tag = branch[len(BRANCH_PREFIX) :] if on_session_branch else branch
        name = self._metric_name()
        rows: list[Experiment] = []
        warnings: list[str] = []
        metric = name or "metric"
        ours, tally = self._records.tallied(tag)
        holder = RepoLock(self.root).held_elsewhere()
        if path.exists() and _mirrors(path, ours):
            # The table is our own session's, row for row: show the records, parse nothing.
            return Snapshot(
                tag=tag,
                branch=branch,
                metric=_metric_column(path, name),
                experiments=ours,
                external=holder is not None,
                holder=holder,
                tally=tally,
            )
        if path.exists():
            rows = results_tsv.read(path, name, strict=False, warnings=warnings)
            metric = _metric_column(path, name)
            for line in warnings:  # never a row dropped without a word (the CLI prints its own)
                log.info("observer: %s", line)
        if rows and not _same_session(ours, rows):
            # results.tsv is untracked, so it stays when another branch is checked out: find
            # the session of ours it belongs to, if any.
            for other in self._records.tags():
                if _same_session(self._records.session(other), rows):
                    tag, branch = other, BRANCH_PREFIX + other
                    ours = self._records.session(other)
                    break
        ours = list(ours)  # each row is compared with its record: decode them once
        # Only rows without a record of ours need git to resolve them (another tool's rows).
        self._resolve([r.commit for r in rows if not _covered(r, ours)])
        experiments = [self._experiment(row, tag, ours) for row in rows]
        mine = len(ours) >= len(rows) and all(_covered(row, ours) for row in rows)
        return Snapshot(
            tag=tag,
            branch=branch,
            metric=metric,
            experiments=experiments,
            external=holder is not None or not mine,
            holder=holder,
            warnings=warnings,
            tally=tally_of(tag, experiments),
        )

    def _experiment(self, row: Experiment, tag: str, ours: list[Experiment]) -> Experiment:
        record = by_number(ours, row.number)
        if record is not None and record.commit.startswith(row.commit):
            return record  # our own record has everything (diff stats, runtime, reason...)
        full, parent = self._resolved.get(row.commit, (row.commit, ""))
        return msgspec.structs.replace(row, commit=full, parent=parent, tag=tag)

    def _resolve(self, commits: list[str]) -> None:
        missing = sorted({c for c in commits if c not in self._resolved})
        if missing:
            self._resolved.update(repo.short_commits(self.root, missing))


def observe(root: Path, metric_name: str | None, records: Records) -> Snapshot | None:
    """One snapshot of the table, read as the daemon's observer reads it (for the CLI, whose
    `records` then answer the rest of its request: the jsonl is read once)."""
    return Observer(root, records, lambda: metric_name, lambda *_: None).snapshot()


def summary_of(snap: Snapshot) -> SessionSummary:
    """The observed session's summary, as session_records.Tally keeps every session's."""
    return snap.tally.summary(snap.branch)


def observed_state(state: LoopState, snap: Snapshot) -> LoopState:
    """`state` (the idle one, with this repository's own sessions) as the observed loop's."""
    summary = summary_of(snap)
    who = f"a loop in another process ({snap.holder})" if snap.holder else "another tool"
    unread = ""
    if snap.warnings:
        unread = f"; {len(snap.warnings)} row(s) cannot be read: {snap.warnings[0]}"
    return msgspec.structs.replace(
        state,
        mode="observer",
        metric=snap.metric,
        iteration=max(summary.total - 1, 0),
        counts=summary.counts,
        best=summary.best,
        best_number=summary.best_number,
        baseline=snap.tally.baseline,
        message=f"watching results.tsv on {snap.branch}, written by {who}{unread}",
        sessions=[summary, *[s for s in state.sessions if s.tag != snap.tag]],
    )


def _covered(row: Experiment, ours: Sequence[Experiment]) -> bool:
    record = by_number(ours, row.number)
    return record is not None and record.commit.startswith(row.commit)


def _mirrors(path: Path, ours: Sequence[Experiment]) -> bool:
    """results.tsv holds exactly our records' rows, as our loop writes it: as many whole rows,
    the same first and last commits. Costs a count of lines, not a parse of 100,000 rows."""
    if not ours:
        return False
    try:
        data = path.read_bytes()
    except OSError:
        return False
    if not data.endswith(b"\n") or b"\n\n" in data or b"\r" in data:
        return False  # a row being written, blank lines, another tool's line ends: read it all
    if data.count(b"\n") - 1 != len(ours):
        return False
    header = data[: data.index(b"\n")].decode("utf-8", "replace").split("\t")
    lower = [c.strip().lower() for c in header]
    if "commit" not in lower:
        return False
    col = lower.index("commit")
    second = data.index(b"\n") + 1
    first_row = data[second : data.index(b"\n", second)]
    last_row = data[data.rfind(b"\n", 0, len(data) - 1) + 1 : -1]
    first, last = ours[0], ours[-1]
    if first.number != 0 or last.number != len(ours) - 1:
        return False  # a record left out: compare row by row
    for row, exp in ((first_row, first), (last_row, last)):
        cells = row.decode("utf-8", "replace").split("\t")
        commit = cells[col].strip() if len(cells) > col else ""
        if not commit or not exp.commit.startswith(commit):
            return False
    return True


def _metric_column(path: Path, metric_name: str | None) -> str:
    """The metric's header name, found the way results_tsv.read finds its column."""
    with open(path, encoding="utf-8", errors="replace") as f:
        header = [c.strip() for c in f.readline().rstrip("\r\n").split("\t")]
    lower = [c.lower() for c in header]
    if metric_name and metric_name.lower() in lower:
        return header[lower.index(metric_name.lower())]
    if "metric" in lower:
        return metric_name or "metric"
    if "commit" in lower and lower.index("commit") + 1 < len(header):
        return header[lower.index("commit") + 1]
    return metric_name or "metric"


def _same_session(ours: Sequence[Experiment], rows: Sequence[Experiment]) -> bool:
    """Both start from the same baseline commit."""
    return bool(ours and rows) and ours[0].commit.startswith(rows[0].commit)


def _appended(before: Snapshot | None, after: Snapshot | None) -> list[Experiment] | None:
    if before is None or after is None or before.tag != after.tag:
        return None
    old, new = before.experiments, after.experiments
    if len(new) < len(old):
        return None
    if isinstance(old, list) and isinstance(new, list):
        if any(a.commit != b.commit for a, b in zip(old, new, strict=False)):
            return None
    elif old and (old[0].commit != new[0].commit or old[-1].commit != new[len(old) - 1].commit):
        return None  # records read from the jsonl only grow: their ends tell a rewrite
    return list(new[len(old) :])
