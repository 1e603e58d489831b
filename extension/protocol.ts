// Method names and payload types of the JSON-RPC protocol between the extension and the daemon.
// The single TypeScript definition; it mirrors server/autoresearch/protocol.py (with config.py and
// experiment.py), and tests/extension/protocol.test.ts checks every name, field, optionality and
// type here against the daemon's exported schema. Keep it declarations only: no vscode import.

/** A JSON integer (the schema's "integer"); `number` alone means any JSON number. */
export type Int = number;

// ---- config.py --------------------------------------------------------------------------------

export type Direction = "lower" | "higher";
export type AgentKind = "sweep" | "manual" | "command" | "editor";
export type MemoryUnit = "GB" | "GiB" | "MB" | "MiB";
/** Where each run executes: a local process, or a job on the [ray] cluster. */
export type Executor = "local" | "ray";

export interface Metric {
  name: string;
  direction: Direction;
  pattern?: string | null;
  extract?: string | null;
  /** Two groups, step and value, read live from run.log: the learning curve. */
  curve?: string | null;
}

export interface Run {
  command: string;
  timeout?: number;
  memory_pattern?: string | null;
  memory_unit?: MemoryUnit;
  guard?: string | null;
  guard_timeout?: number;
  max_log_mb?: number;
  min_free_mb?: number;
  keep_logs?: Int;
  executor?: Executor;
}

export interface Scope {
  files?: string[];
  off_limits?: string[];
}

export interface Protocol {
  text?: string;
  time_budget?: number | null;
}

export type ParamType = "int" | "float" | "log" | "choice";

export interface SweepParam {
  name: string;
  type?: ParamType | null;
  low?: number | null;
  high?: number | null;
  log?: boolean | null;
  step?: number | null;
  multiple_of?: Int | null;
  choices?: (Int | number | string)[] | null;
}

export interface Agent {
  kind?: AgentKind;
  preset?: string | null;
  command?: string | null;
  timeout?: number;
  vendor?: string | null;
  family?: string | null;
  params?: SweepParam[];
  seed?: Int | null;
  freeze?: string[] | null;
  tune?: string[];
  constraints?: string[];
}

export interface Decision {
  min_improvement?: number;
  noise_repeats?: Int;
  confirmation_runs?: Int;
  prune?: boolean;
  prune_after?: number;
  prune_margin?: number;
}

/** When the loop stops by itself, after the current experiment; none set: never. */
export interface Stop {
  target?: number | null;
  max_experiments?: Int | null;
  plateau?: Int | null;
  wall_clock?: string | null;
  agent_cost_usd?: number | null;
}

export interface Notify {
  webhook?: string | null;
  new_best?: boolean;
}

/** [parallel]: "auto" is one worker per GPU the monitor sees; 1 is the one-at-a-time loop. */
export interface Parallel {
  workers?: Int | "auto";
  gpus_per_worker?: Int;
}

/** [ray]: the cluster runs go to with run.executor "ray"; address unset: $RAY_ADDRESS. */
export interface Ray {
  address?: string | null;
  gpus_per_experiment?: Int;
  start_timeout?: number;
}

export interface Config {
  metric: Metric;
  run: Run;
  scope?: Scope;
  protocol?: Protocol;
  constraints?: string;
  agent?: Agent;
  decision?: Decision;
  stop?: Stop;
  notify?: Notify;
  parallel?: Parallel;
  ray?: Ray;
}

// ---- experiment.py ----------------------------------------------------------------------------

export type Status = "keep" | "discard" | "crash";
export type CrashKind =
  | "timeout"
  | "oom"
  | "missing_metric"
  | "exit"
  | "interrupted"
  | "log_limit"
  | "invalid"
  | "environment";
export type GuardResult = "passed" | "failed" | "skipped";

export interface DiffStats {
  files?: Int;
  additions?: Int;
  deletions?: Int;
}

export interface Experiment {
  number: Int;
  commit: string;
  status: Status;
  metric?: number | null;
  memory_gb?: number;
  description?: string;
  tag?: string;
  parent?: string;
  reason?: string;
  crash_kind?: CrashKind | null;
  exit_code?: Int | null;
  runtime_s?: number;
  agent_s?: number;
  /** What the agent's calls cost, where its program reports it (absent: unknown). */
  cost_usd?: number | null;
  tokens?: Int | null;
  peak_rss_gb?: number;
  peak_gpu_gb?: number;
  diff?: DiffStats;
  confirmation?: number[];
  guard?: GuardResult | null;
  events?: string[];
  params?: Record<string, number | string>;
  started?: string;
  finished?: string;
  extra?: Record<string, string>;
  /** Parallel experiments: the worker that ran it, and its GPU indices. */
  worker?: Int | null;
  gpus?: Int[];
}

// ---- protocol.py: requests --------------------------------------------------------------------

export type Phase =
  | "idle"
  | "setup"
  | "baseline"
  | "editing"
  | "committing"
  | "running"
  | "measuring"
  | "guarding"
  | "deciding"
  | "paused"
  | "stopped"
  | "failed";
/** `loop`: this daemon runs the loop. `observer`: someone else's loop, read from disk. */
export type Mode = "none" | "loop" | "observer";

export interface RootParams {
  root: string;
}

export interface DetectParams {
  root: string;
}

export interface StartParams {
  root: string;
  /** Omitted: use the autoresearch.toml in root. Given: validated, saved there, then used. */
  config?: Config | null;
  /** Experiments to run after the baseline; omitted = run until stopped. */
  loop?: Int | null;
  tag?: string | null;
  /** True: the loop runs in its own process, outliving the daemon; a manual one pauses with no editor. */
  detach?: boolean;
}

export interface StopParams {
  root: string;
  /** False: finish the running experiment first. True: abandon it now (recorded as a crash). */
  now?: boolean;
}

export interface RunExperimentParams {
  root: string;
  description?: string;
}

export interface GuidanceParams {
  root: string;
  text: string;
}

export interface ExperimentsParams {
  root: string;
  offset?: Int;
  limit?: Int;
  /** A session tag; omitted = the current (or observed) session. */
  tag?: string | null;
  newest_first?: boolean;
}

export interface ChartSeriesParams {
  root: string;
  /** A session tag; omitted = the current (or observed) session. */
  tag?: string | null;
  /** How many columns the chart has room for: one bucket each (about one per pixel). */
  buckets?: Int;
}

export interface ChangesParams {
  root: string;
  commit?: string | null;
  number?: Int | null;
  tag?: string | null;
}

export interface FileAtParams {
  root: string;
  commit: string;
  path: string;
}

export interface LogParams {
  root: string;
  /** Omitted: the live run.log. */
  number?: Int | null;
  tag?: string | null;
  max_bytes?: Int;
}

export interface CurveParams {
  root: string;
  number: Int;
  tag?: string | null;
}

export interface GpusParams {
  root?: string | null;
}

// ---- protocol.py: results ---------------------------------------------------------------------

export interface MetricCandidate {
  name: string;
  /** Its last value in an existing run.log; absent when only the script's print was seen. */
  value?: number | null;
  /** Where it was seen: "run.log" or the script's path. */
  source?: string;
}

export interface DetectResult {
  config: Config;
  /** What was inferred and from where, one line each. */
  notes: string[];
  /** Settings that could not be inferred and must be asked (direction always is). */
  ask: string[];
  /** Candidate files for the scope multi-select. */
  candidates: string[];
  /** An autoresearch branch + results.tsv already exist: start resumes. */
  resumable?: boolean;
  /** Every metric-like line found, the likeliest first (test/validation before train). */
  metrics?: MetricCandidate[];
}

export interface Counts {
  keep?: Int;
  discard?: Int;
  crash?: Int;
}

export interface SessionSummary {
  tag: string;
  branch: string;
  total: Int;
  counts: Counts;
  best?: number | null;
  best_number?: Int | null;
}

/** One worker of a parallel loop and what it is doing now. */
export interface WorkerState {
  worker: Int;
  /** GPU indices in its CUDA_VISIBLE_DEVICES; empty for a CPU slot. */
  gpus?: Int[];
  phase?: Phase;
  number?: Int | null;
  description?: string;
  elapsed_s?: number | null;
  timeout_s?: number | null;
  /** The commit it started from. */
  parent?: string;
}

export interface LoopState {
  root: string;
  phase: Phase;
  mode?: Mode;
  tag?: string;
  branch?: string;
  metric?: string;
  direction?: string;
  agent?: string;
  iteration?: Int;
  /** The experiment being made (its number), if any. */
  current?: Int | null;
  best?: number | null;
  best_number?: Int | null;
  baseline?: number | null;
  counts?: Counts;
  /** Bounded run: experiments left; null = unbounded. */
  remaining?: Int | null;
  message?: string;
  /** Seconds into the running command, and its timeout, for progress. */
  elapsed_s?: number | null;
  timeout_s?: number | null;
  /** The running experiment's learning curve so far: its last point. */
  curve_step?: Int | null;
  curve_value?: number | null;
  sessions?: SessionSummary[];
  /** A parallel loop's workers (empty for the one-at-a-time loop). */
  workers?: WorkerState[];
}

export interface ExperimentsPage {
  root: string;
  tag: string;
  total: Int;
  offset: Int;
  items: Experiment[];
}

/** Experiments `first`..`last` (numbers, both included) reduced to what one column shows. */
export interface ChartBucket {
  first: Int;
  last: Int;
  keep?: Int;
  discard?: Int;
  crash?: Int;
  discard_min?: number | null;
  discard_max?: number | null;
  /** The keeps' range (drawn as a bar when the keeps are not listed one by one). */
  keep_min?: number | null;
  keep_max?: number | null;
  /** The running best at the bucket's end: the metric of the last keep so far. */
  best?: number | null;
  /** How many of its experiments a parallel loop's worker ran (drawn as a lane mark). */
  parallel?: Int;
}

/** A session as the chart draws it: the keeps, the rest reduced to per-column buckets. */
export interface ChartSeries {
  root: string;
  tag: string;
  total: Int;
  /** Experiment numbers per bucket (1: nothing merged). */
  span: Int;
  buckets: ChartBucket[];
  /** Every keep, as two columns, when there are no more than buckets; else both empty. */
  keep_numbers: Int[];
  keep_metrics: (number | null)[];
}

export type FileStatus = "added" | "modified" | "deleted" | "renamed";

export interface FileChange {
  path: string;
  status: FileStatus;
  additions: Int;
  deletions: Int;
  old_path?: string | null;
  binary?: boolean;
}

export interface ChangesResult {
  number: Int | null;
  commit: string;
  parent: string;
  files: FileChange[];
  status?: string;
  metric?: number | null;
}

export interface FileAtResult {
  exists: boolean;
  content?: string;
  encoding?: "utf-8" | "base64";
}

export interface LogResult {
  path: string;
  text: string;
  size: Int;
  truncated: boolean;
}

export interface GpuProcess {
  pid: Int;
  used_mib: number;
  name?: string;
}

export interface GpuInfo {
  index: Int;
  name: string;
  utilization: number;
  memory_used_mib: number;
  memory_total_mib: number;
  temperature_c?: number | null;
  power_w?: number | null;
  processes?: GpuProcess[];
}

export interface GpuStatus {
  available: boolean;
  message: string;
  gpus?: GpuInfo[];
}

export interface Ack {
  ok: boolean;
  message?: string;
}

// ---- protocol.py: notifications ---------------------------------------------------------------

export interface ExperimentRecorded {
  root: string;
  tag: string;
  experiment: Experiment;
}

export interface LocksChanged {
  root: string;
  /**
   * Concrete repo-relative file paths, sorted, never patterns (the daemon expands the scope).
   * `locked`: read-only in the editor now; `off_limits`: the files the loop never edits.
   */
  locked: string[];
  off_limits: string[];
  reason?: string;
}

/** The daemon asks the extension to send one prompt to the editor's chat model (vscode.lm). */
export interface EditorEditParams {
  root: string;
  vendor: string;
  family: string | null;
  prompt: string;
  number: Int;
  attempt: Int;
}

export type EditorProblem = "no_window" | "no_model" | "consent" | "failed";

export interface EditorEditResult {
  text?: string;
  tokens_in?: Int | null;
  tokens_out?: Int | null;
  problem?: EditorProblem | null;
  message?: string;
  model?: string;
}

export interface LogAppended {
  root: string;
  number: Int | null;
  text: string;
}

/** Points of an experiment's learning curve: new ones as a run makes them, or a stored curve. */
export interface CurvePoints {
  root: string;
  tag: string;
  number: Int;
  steps: Int[];
  values: number[];
}

export type NoticeKind = "stopped" | "failed" | "crashes" | "new_best";

/** The loop stopped by itself (and why) or on an error, crashed 3 times in a row, or found a new best. */
export interface LoopNotice {
  root: string;
  kind: NoticeKind;
  text: string;
  tag?: string;
  number?: Int | null;
}

// ---- methods ----------------------------------------------------------------------------------

/** Method names (DESIGN §5), as in protocol.py's class Method. */
export const Method = {
  detect: "autoresearch/detect",
  start: "autoresearch/start",
  stop: "autoresearch/stop",
  pause: "autoresearch/pause",
  resume: "autoresearch/resume",
  runExperiment: "autoresearch/runExperiment",
  state: "autoresearch/state",
  experiments: "autoresearch/experiments",
  changes: "autoresearch/changes",
  fileAt: "autoresearch/fileAt",
  log: "autoresearch/log",
  gpus: "autoresearch/gpus",
  guidance: "autoresearch/guidance",
  chartSeries: "autoresearch/chartSeries",
  curve: "autoresearch/curve",
  stateChanged: "autoresearch/stateChanged",
  experimentRecorded: "autoresearch/experimentRecorded",
  gpuStatus: "autoresearch/gpuStatus",
  locksChanged: "autoresearch/locksChanged",
  logAppended: "autoresearch/logAppended",
  curvePoints: "autoresearch/curvePoints",
  notice: "autoresearch/notice",
  editorEdit: "autoresearch/editorEdit",
} as const;

/** Every notification the daemon sends; the client subscribes to each (checked by a test). */
export const NOTIFICATION_METHODS = [
  Method.stateChanged,
  Method.experimentRecorded,
  Method.gpuStatus,
  Method.locksChanged,
  Method.logAppended,
  Method.curvePoints,
  Method.notice,
] as const;

/** Requests (client -> daemon): params and result of each, as in protocol.py's REQUESTS. */
export interface Requests {
  "autoresearch/detect": { params: DetectParams; result: DetectResult };
  "autoresearch/start": { params: StartParams; result: LoopState };
  "autoresearch/stop": { params: StopParams; result: LoopState };
  "autoresearch/pause": { params: RootParams; result: LoopState };
  "autoresearch/resume": { params: RootParams; result: LoopState };
  "autoresearch/runExperiment": { params: RunExperimentParams; result: Ack };
  "autoresearch/state": { params: RootParams; result: LoopState };
  "autoresearch/experiments": { params: ExperimentsParams; result: ExperimentsPage };
  "autoresearch/changes": { params: ChangesParams; result: ChangesResult };
  "autoresearch/fileAt": { params: FileAtParams; result: FileAtResult };
  "autoresearch/log": { params: LogParams; result: LogResult };
  "autoresearch/gpus": { params: GpusParams; result: GpuStatus };
  "autoresearch/guidance": { params: GuidanceParams; result: Ack };
  "autoresearch/chartSeries": { params: ChartSeriesParams; result: ChartSeries };
  "autoresearch/curve": { params: CurveParams; result: CurvePoints };
}

/** Notifications (daemon -> client), as in protocol.py's NOTIFICATIONS. */
export interface Notifications {
  "autoresearch/stateChanged": LoopState;
  "autoresearch/experimentRecorded": ExperimentRecorded;
  "autoresearch/gpuStatus": GpuStatus;
  "autoresearch/locksChanged": LocksChanged;
  "autoresearch/logAppended": LogAppended;
  "autoresearch/curvePoints": CurvePoints;
  "autoresearch/notice": LoopNotice;
}

/** Requests (daemon -> client), as in protocol.py's CLIENT_REQUESTS. */
export interface ClientRequests {
  "autoresearch/editorEdit": { params: EditorEditParams; result: EditorEditResult };
}

export type RequestMethod = keyof Requests;
export type NotificationMethod = keyof Notifications;
export type ParamsOf<M extends RequestMethod> = Requests[M]["params"];
export type ResultOf<M extends RequestMethod> = Requests[M]["result"];

/** What the rest of the extension needs from the daemon connection: the seam tests fake. */
export interface DaemonApi {
  request<M extends RequestMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>>;
}

/** Phases in which the loop is alive (running, or paused and resumable). */
export const ACTIVE_PHASES: readonly Phase[] = [
  "setup",
  "baseline",
  "editing",
  "committing",
  "running",
  "measuring",
  "guarding",
  "deciding",
  "paused",
];
