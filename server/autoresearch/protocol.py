"""Every JSON-RPC payload between the extension and the daemon: the single source of truth.

`extension/protocol.ts` mirrors this file; `tests/extension/protocol.test.ts` checks the two
against `schema()`, exported with `autoresearch schema`.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from .config import Config
from .experiment import Experiment

Phase = Literal[
    "idle",
    "setup",
    "baseline",
    "editing",
    "committing",
    "running",
    "measuring",
    "guarding",
    "deciding",
    "paused",
    "stopped",
    "failed",
]
# `loop`: this daemon runs the loop. `observer`: someone else's loop, read from disk.
Mode = Literal["none", "loop", "observer"]


class Method:
    """JSON-RPC method names (DESIGN §5)."""

    DETECT = "autoresearch/detect"
    START = "autoresearch/start"
    STOP = "autoresearch/stop"
    PAUSE = "autoresearch/pause"
    RESUME = "autoresearch/resume"
    RUN_EXPERIMENT = "autoresearch/runExperiment"
    STATE = "autoresearch/state"
    EXPERIMENTS = "autoresearch/experiments"
    CHANGES = "autoresearch/changes"
    FILE_AT = "autoresearch/fileAt"
    LOG = "autoresearch/log"
    GPUS = "autoresearch/gpus"
    GUIDANCE = "autoresearch/guidance"
    CHART_SERIES = "autoresearch/chartSeries"
    CURVE = "autoresearch/curve"
    # Notifications, daemon -> client.
    STATE_CHANGED = "autoresearch/stateChanged"
    EXPERIMENT_RECORDED = "autoresearch/experimentRecorded"
    GPU_STATUS = "autoresearch/gpuStatus"
    LOCKS_CHANGED = "autoresearch/locksChanged"
    LOG_APPENDED = "autoresearch/logAppended"
    CURVE_POINTS = "autoresearch/curvePoints"
    NOTICE = "autoresearch/notice"
    # Requests, daemon -> client.
    EDITOR_EDIT = "autoresearch/editorEdit"


# ---- requests ---------------------------------------------------------------------------------


class RootParams(msgspec.Struct, forbid_unknown_fields=True):
    root: str


class DetectParams(RootParams, forbid_unknown_fields=True):
    pass


class StartParams(RootParams, forbid_unknown_fields=True):
    # Omitted: use the autoresearch.toml in root. Given: validated, saved there, then used.
    config: Config | None = None
    # Experiments to run after the baseline; omitted = run until stopped.
    loop: int | None = None
    tag: str | None = None
    # True: the loop runs in its own process and outlives this daemon (the daemon attaches to
    # it); a manual loop pauses when the last editor goes, as it needs a person. The editor
    # agent's loop asks the editor's model through this client: it stays here.
    detach: bool = False


class StopParams(RootParams, forbid_unknown_fields=True):
    # False: finish the running experiment first. True: abandon it now (recorded as a crash).
    now: bool = False


class RunExperimentParams(RootParams, forbid_unknown_fields=True):
    description: str = ""


class GuidanceParams(RootParams, forbid_unknown_fields=True):
    text: str


class ExperimentsParams(RootParams, forbid_unknown_fields=True):
    offset: int = 0
    limit: int = 200
    # A session tag; omitted = the current (or observed) session.
    tag: str | None = None
    # Newest first, as the tree shows them.
    newest_first: bool = True


class ChartSeriesParams(RootParams, forbid_unknown_fields=True):
    # A session tag; omitted = the current (or observed) session.
    tag: str | None = None
    # How many columns the chart has room for: one bucket each (about one per pixel).
    buckets: int = 1000


class ChangesParams(RootParams, forbid_unknown_fields=True):
    commit: str | None = None
    number: int | None = None
    tag: str | None = None


class FileAtParams(RootParams, forbid_unknown_fields=True):
    commit: str
    path: str


class LogParams(RootParams, forbid_unknown_fields=True):
    # Omitted: the live run.log.
    number: int | None = None
    tag: str | None = None
    max_bytes: int = 65536


class CurveParams(RootParams, forbid_unknown_fields=True):
    number: int
    # A session tag; omitted = the current (or observed) session.
    tag: str | None = None


class GpusParams(msgspec.Struct, forbid_unknown_fields=True):
    root: str | None = None


# ---- results ----------------------------------------------------------------------------------


class MetricCandidate(msgspec.Struct, omit_defaults=True):
    name: str
    # Its last value in an existing run.log; None when only the script's print was seen.
    value: float | None = None
    # Where it was seen: "run.log" or the script's path.
    source: str = ""


class DetectResult(msgspec.Struct):
    config: Config
    # What was inferred and from where, one line each, for the wizard and `init`.
    notes: list[str]
    # Settings that could not be inferred and must be asked (direction always is).
    ask: list[str]
    # Candidate files for the scope multi-select.
    candidates: list[str]
    # An autoresearch branch + results.tsv already exist: start resumes.
    resumable: bool = False
    # Every metric-like line found, the likeliest first (test/validation before train).
    metrics: list[MetricCandidate] = msgspec.field(default_factory=list)


class Counts(msgspec.Struct):
    keep: int = 0
    discard: int = 0
    crash: int = 0


class SessionSummary(msgspec.Struct):
    tag: str
    branch: str
    total: int
    counts: Counts
    best: float | None = None
    best_number: int | None = None


class WorkerState(msgspec.Struct, omit_defaults=True):
    """One worker of a parallel loop ([parallel] workers > 1) and what it is doing now."""

    worker: int
    # GPU indices in its CUDA_VISIBLE_DEVICES; [] for a CPU slot.
    gpus: list[int] = msgspec.field(default_factory=list)
    # idle, editing, committing, running, measuring, guarding (Phase's words).
    phase: Phase = "idle"
    # The experiment it works on, and what it tries.
    number: int | None = None
    description: str = ""
    # Seconds into its running command, and the timeout.
    elapsed_s: float | None = None
    timeout_s: float | None = None
    # The commit it started from (the best when it started).
    parent: str = ""


class LoopState(msgspec.Struct):
    root: str
    phase: Phase
    mode: Mode = "none"
    tag: str = ""
    branch: str = ""
    metric: str = ""
    direction: str = ""
    agent: str = ""
    iteration: int = 0
    # The experiment being made (its number), if any.
    current: int | None = None
    best: float | None = None
    best_number: int | None = None
    baseline: float | None = None
    counts: Counts = msgspec.field(default_factory=Counts)
    # Bounded run: experiments left; None = unbounded.
    remaining: int | None = None
    message: str = ""
    # Seconds into the running command, and its timeout, for progress.
    elapsed_s: float | None = None
    timeout_s: float | None = None
    # The running experiment's learning curve so far ([metric] curve): its last point.
    curve_step: int | None = None
    curve_value: float | None = None
    sessions: list[SessionSummary] = msgspec.field(default_factory=list)
    # A parallel loop's workers, one entry each (empty for the one-at-a-time loop).
    workers: list[WorkerState] = msgspec.field(default_factory=list)


class ExperimentsPage(msgspec.Struct):
    root: str
    tag: str
    total: int
    offset: int
    items: list[Experiment]


class ChartBucket(msgspec.Struct):
    """Experiments `first`..`last` (numbers, both included) reduced to what one column shows."""

    first: int
    last: int
    keep: int = 0
    discard: int = 0
    crash: int = 0
    # The discards' metrics: their range, drawn as one bar whose strength is `discard`.
    discard_min: float | None = None
    discard_max: float | None = None
    # The keeps' metrics: their range (drawn as a bar when the keeps are not listed one by one).
    keep_min: float | None = None
    keep_max: float | None = None
    # The running best at the bucket's end: the metric of the last keep so far.
    best: float | None = None
    # How many of its experiments a parallel loop's worker ran (drawn as a lane mark).
    parallel: int = 0


class ChartSeries(msgspec.Struct):
    """A session as the chart draws it, whatever its size: every keep (the best line steps at
    each), the rest reduced to per-column buckets. Descriptions are asked for on hover."""

    root: str
    tag: str
    total: int
    # Experiment numbers per bucket (1: one experiment per bucket, nothing merged).
    span: int
    buckets: list[ChartBucket]
    # Every keep, as two columns, when there are no more keeps than buckets (each a marker the
    # chart can draw apart); else both empty and the buckets' keep ranges stand for them.
    keep_numbers: list[int]
    keep_metrics: list[float | None]


FileStatus = Literal["added", "modified", "deleted", "renamed"]


class FileChange(msgspec.Struct):
    path: str
    status: FileStatus
    additions: int
    deletions: int
    old_path: str | None = None
    binary: bool = False


class ChangesResult(msgspec.Struct):
    number: int | None
    commit: str
    parent: str
    files: list[FileChange]
    status: str = ""
    metric: float | None = None


class FileAtResult(msgspec.Struct):
    exists: bool
    content: str = ""
    encoding: Literal["utf-8", "base64"] = "utf-8"


class LogResult(msgspec.Struct):
    path: str
    text: str
    size: int
    truncated: bool


class GpuProcess(msgspec.Struct):
    pid: int
    used_mib: float
    name: str = ""


class GpuInfo(msgspec.Struct):
    index: int
    name: str
    utilization: float
    memory_used_mib: float
    memory_total_mib: float
    temperature_c: float | None = None
    power_w: float | None = None
    processes: list[GpuProcess] = msgspec.field(default_factory=list)


class GpuStatus(msgspec.Struct):
    available: bool
    message: str
    gpus: list[GpuInfo] = msgspec.field(default_factory=list)


class Ack(msgspec.Struct):
    ok: bool
    message: str = ""


# ---- notifications ----------------------------------------------------------------------------


class ExperimentRecorded(msgspec.Struct):
    root: str
    tag: str
    experiment: Experiment


class LocksChanged(msgspec.Struct):
    root: str
    # Concrete repo-relative file paths, sorted, never patterns: the daemon expands the scope
    # (scope.expand_paths); the editor matches nothing. `locked`: read-only in the editor now
    # (in scope, not off-limits); `off_limits`: the files the loop never edits.
    locked: list[str]
    off_limits: list[str]
    reason: str = ""


class LogAppended(msgspec.Struct):
    root: str
    number: int | None
    text: str


class CurvePoints(msgspec.Struct):
    """Points of an experiment's learning curve ([metric] curve): as a run makes them (the
    notification: only the new ones), or all of a stored curve (the request)."""

    root: str
    tag: str
    number: int
    steps: list[int]
    values: list[float]


NoticeKind = Literal["stopped", "failed", "crashes", "new_best"]


class LoopNotice(msgspec.Struct):
    """Something a person away from the loop wants to know: it stopped by itself (and why) or
    on an error, crashed 3 times in a row, or found a new best. `number`: the experiment to open."""

    root: str
    kind: NoticeKind
    text: str
    tag: str = ""
    number: int | None = None


class EditorEditParams(msgspec.Struct):
    """The daemon asks the extension to send one prompt to the editor's chat model."""

    root: str
    vendor: str
    family: str | None
    prompt: str
    # The experiment the edit is for, and its attempt (0, then retries and reworks).
    number: int
    attempt: int


# Why the editor's model could not answer: no VS Code window (no client), no model of that
# vendor/family, the user refused consent, or the model's request failed.
EditorProblem = Literal["no_window", "no_model", "consent", "failed"]


class EditorEditResult(msgspec.Struct):
    # The model's whole reply, when it answered.
    text: str = ""
    # Token counts where the API reports them (countTokens of the prompt and of the reply).
    tokens_in: int | None = None
    tokens_out: int | None = None
    # Set when there is no reply: what kind of problem, and the message for the user.
    problem: EditorProblem | None = None
    message: str = ""
    # The model that answered ("copilot/gpt-4o"), for the experiment's log.
    model: str = ""


REQUESTS: dict[str, tuple[type, type]] = {
    Method.DETECT: (DetectParams, DetectResult),
    Method.START: (StartParams, LoopState),
    Method.STOP: (StopParams, LoopState),
    Method.PAUSE: (RootParams, LoopState),
    Method.RESUME: (RootParams, LoopState),
    Method.RUN_EXPERIMENT: (RunExperimentParams, Ack),
    Method.STATE: (RootParams, LoopState),
    Method.EXPERIMENTS: (ExperimentsParams, ExperimentsPage),
    Method.CHANGES: (ChangesParams, ChangesResult),
    Method.FILE_AT: (FileAtParams, FileAtResult),
    Method.LOG: (LogParams, LogResult),
    Method.GPUS: (GpusParams, GpuStatus),
    Method.GUIDANCE: (GuidanceParams, Ack),
    Method.CHART_SERIES: (ChartSeriesParams, ChartSeries),
    Method.CURVE: (CurveParams, CurvePoints),
}

# Requests the daemon sends to the client.
CLIENT_REQUESTS: dict[str, tuple[type, type]] = {
    Method.EDITOR_EDIT: (EditorEditParams, EditorEditResult),
}

NOTIFICATIONS: dict[str, type] = {
    Method.STATE_CHANGED: LoopState,
    Method.EXPERIMENT_RECORDED: ExperimentRecorded,
    Method.GPU_STATUS: GpuStatus,
    Method.LOCKS_CHANGED: LocksChanged,
    Method.LOG_APPENDED: LogAppended,
    Method.CURVE_POINTS: CurvePoints,
    Method.NOTICE: LoopNotice,
}


def schema() -> dict[str, Any]:
    """JSON Schema of every payload, keyed by method, for the extension's protocol test."""
    types: list[Any] = []
    for params, result in REQUESTS.values():
        types += [params, result]
    for params, result in CLIENT_REQUESTS.values():
        types += [params, result]
    types += list(NOTIFICATIONS.values())
    unique = list(dict.fromkeys(types))
    refs, components = msgspec.json.schema_components(unique)
    by_type = dict(zip(unique, refs, strict=True))
    return {
        "requests": {
            name: {"params": by_type[p], "result": by_type[r]} for name, (p, r) in REQUESTS.items()
        },
        "notifications": {name: by_type[t] for name, t in NOTIFICATIONS.items()},
        "clientRequests": {
            name: {"params": by_type[p], "result": by_type[r]}
            for name, (p, r) in CLIENT_REQUESTS.items()
        },
        "components": components,
    }


def to_wire(value: msgspec.Struct) -> Any:
    """Plain builtins for pygls: it must never see a Struct."""
    return msgspec.to_builtins(value)
