// How numbers, durations, phases and experiments read in the UI. Pure: no vscode import, so the
// tree, the status bar, the chart and the e2e state dump all word things the same way.
import { ACTIVE_PHASES, type Experiment, type GpuInfo, type GpuStatus, type LoopState, type Phase, type Status, type WorkerState } from "./protocol";
import { countsText } from "./counts";
import { busyText, workerText } from "./workers";

// The counts' words live in counts.ts (the chart's webview shares them); re-exported here.
export { countsText };

export function formatMetric(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "—";
  const abs = Math.abs(value);
  if (abs !== 0 && (abs >= 1e6 || abs < 1e-4)) return value.toExponential(3);
  return String(Number(value.toPrecision(6)));
}

/** Signed difference from the best, e.g. "+0.0123" or "−0.5"; "" when either is missing. */
export function formatDelta(value: number | null | undefined, best: number | null | undefined) {
  if (value === null || value === undefined || best === null || best === undefined) return "";
  const delta = value - best;
  if (delta === 0) return "±0";
  const text = formatMetric(Math.abs(delta));
  return `${delta > 0 ? "+" : "−"}${text}`;
}

export function formatMemoryGb(gb: number | undefined): string {
  if (!gb) return "";
  return `${gb >= 100 ? gb.toFixed(0) : gb.toFixed(1)} GB`;
}

export function formatMib(mib: number): string {
  return mib >= 1024 ? `${(mib / 1024).toFixed(1)} GB` : `${mib.toFixed(0)} MB`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) {
    return "";
  }
  const s = Math.floor(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

const PHASE_LABELS: Record<Phase, string> = {
  idle: "Idle",
  setup: "Setting up",
  baseline: "Baseline",
  editing: "Editing",
  committing: "Committing",
  running: "Running",
  measuring: "Measuring",
  guarding: "Guard",
  deciding: "Deciding",
  paused: "Paused",
  stopped: "Stopped",
  failed: "Failed",
};

export function phaseLabel(phase: Phase): string {
  return PHASE_LABELS[phase] ?? phase;
}

export const STATUS_ICONS: Record<Status | "running", { icon: string; color: string }> = {
  keep: { icon: "pass-filled", color: "testing.iconPassed" },
  discard: { icon: "circle-slash", color: "disabledForeground" },
  crash: { icon: "error", color: "testing.iconFailed" },
  running: { icon: "loading~spin", color: "" },
};

/** What one row of the tree shows; the view turns it into a TreeItem, the e2e dump into JSON. */
export interface Row {
  id: string;
  label: string;
  description: string;
  tooltip: string;
  icon: string;
  color: string;
  contextValue: string;
}

/** One line of text that fits a tree row: tabs and newlines folded, long text cut. */
export function oneLine(text: string, max = 120): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** The experiment a delta is measured against: the best (last keep) when it was decided. */
export interface Reference {
  number: number;
  metric: number | null | undefined;
}

/**
 * A tree row leads with the change (what was tried: the description), the number before it; the
 * metric, the delta and the memory come after, where a narrow side bar cuts them off first.
 */
export function experimentRow(
  experiment: Experiment,
  reference: Reference | undefined,
  bestNumber: number | null | undefined,
  metricName: string,
): Row {
  const status = experiment.status;
  const { icon, color } = STATUS_ICONS[status] ?? STATUS_ICONS.discard;
  const isBest = bestNumber !== null && bestNumber !== undefined && experiment.number === bestNumber;
  const delta = formatDelta(experiment.metric, reference?.metric);
  const metric = status === "crash" ? (experiment.crash_kind ?? "crash") : formatMetric(experiment.metric);
  const parts = [
    metric,
    isBest ? "★ best" : "",
    delta && `Δ ${delta}`,
    formatMemoryGb(experiment.memory_gb),
    workerText(experiment.worker, experiment.gpus), // a parallel loop's: where it ran
  ].filter((part) => part);
  const change = oneLine(experiment.description ?? "");
  return {
    id: experimentId(experiment.tag ?? "", experiment.number),
    label: change ? `#${experiment.number} ${change}` : `#${experiment.number}`,
    description: parts.join(" · "),
    tooltip: experimentTooltip(experiment, reference, metricName),
    icon,
    color,
    contextValue: `autoresearch.experiment.${status}`,
  };
}

export function experimentId(tag: string, number: number): string {
  return `experiment:${tag}:${number}`;
}

/** What the agent's calls cost over `experiments` ("$0.075, 9,450 tokens"); "" when none said. */
export function formatCost(experiments: readonly Experiment[]): string {
  let usd = 0;
  let tokens = 0;
  let priced = false;
  let counted = false;
  for (const e of experiments) {
    if (typeof e.cost_usd === "number") {
      usd += e.cost_usd;
      priced = true;
    }
    if (typeof e.tokens === "number") {
      tokens += e.tokens;
      counted = true;
    }
  }
  const parts: string[] = [];
  if (priced) parts.push(`$${Number(usd.toPrecision(4))}`);
  if (counted) parts.push(`${tokens.toLocaleString("en-US")} tokens`);
  return parts.join(", ");
}

/** The full record, as Markdown for the tree's tooltip. */
export function experimentTooltip(e: Experiment, reference: Reference | undefined, metricName: string): string {
  const lines: string[] = [`**#${e.number} · ${e.status}** · \`${e.commit.slice(0, 7)}\``, ""];
  const row = (name: string, value: string | number | undefined | null) => {
    if (value !== undefined && value !== null && value !== "") lines.push(`- ${name}: ${value}`);
  };
  row(metricName || "metric", formatMetric(e.metric));
  // Against the best when it was decided, as the daemon's reason ("worse by …") is.
  if (reference) row(`vs #${reference.number}, the best before it (${formatMetric(reference.metric)})`, formatDelta(e.metric, reference.metric));
  row("memory", formatMemoryGb(e.memory_gb));
  row("ran on", workerText(e.worker, e.gpus));
  row("description", e.description ? oneLine(e.description, 400) : "");
  row("reason", e.reason);
  row("crash", e.crash_kind);
  row("exit code", e.exit_code);
  row("runtime", formatDuration(e.runtime_s || null));
  row("agent time", formatDuration(e.agent_s || null));
  row("agent cost", formatCost([e]));
  row("peak RSS", formatMemoryGb(e.peak_rss_gb));
  row("peak GPU memory", formatMemoryGb(e.peak_gpu_gb));
  if (e.diff && (e.diff.files || e.diff.additions || e.diff.deletions)) {
    row("diff", `${e.diff.files ?? 0} files, +${e.diff.additions ?? 0} −${e.diff.deletions ?? 0}`);
  }
  if (e.confirmation && e.confirmation.length) {
    row("confirmation runs", e.confirmation.map((v) => formatMetric(v)).join(", "));
  }
  row("guard", e.guard);
  if (e.params && Object.keys(e.params).length) {
    row("params", Object.entries(e.params).map(([k, v]) => `${k}=${typeof v === "string" ? JSON.stringify(v) : formatMetric(v)}`).join(", "));
  }
  for (const event of e.events ?? []) row("event", event);
  row("parent", e.parent ? `\`${e.parent.slice(0, 7)}\`` : "");
  row("started", e.started);
  row("finished", e.finished);
  for (const [key, value] of Object.entries(e.extra ?? {})) row(key, value);
  return lines.join("\n");
}

/**
 * Manual mode's edit phase: the loop waits for the user (not a busy agent), who edits the files
 * in scope and then runs Run Experiment.
 */
export function waitsForUserEdit(state: LoopState | undefined): boolean {
  return !!state && state.mode === "loop" && state.phase === "editing" && state.agent === "manual";
}

const USER_EDIT_HINT = "edit the files in scope, save, then Autoresearch: Run Experiment";

export function runningRow(state: LoopState): Row {
  const number = state.current ?? 0;
  if (waitsForUserEdit(state)) {
    return {
      id: experimentId(state.tag ?? "", number) + ":running",
      label: `#${number} waiting for your edit`,
      description: USER_EDIT_HINT,
      tooltip: `Experiment #${number} waits for your edit: ${USER_EDIT_HINT}.`,
      icon: "edit",
      color: "",
      contextValue: "autoresearch.running",
    };
  }
  const progress =
    state.elapsed_s !== null && state.elapsed_s !== undefined
      ? `${formatDuration(state.elapsed_s)}${state.timeout_s ? ` / ${formatDuration(state.timeout_s)}` : ""}`
      : "";
  return {
    id: experimentId(state.tag ?? "", number) + ":running",
    label: `#${number} ${phaseLabel(state.phase).toLowerCase()}`,
    description: [progress, oneLine(state.message ?? "")].filter((p) => p).join(" · "),
    tooltip: `Experiment #${number} is being made: ${phaseLabel(state.phase)}`,
    icon: STATUS_ICONS.running.icon,
    color: "",
    contextValue: "autoresearch.running",
  };
}

function workerProgress(w: WorkerState): string {
  if (w.elapsed_s === null || w.elapsed_s === undefined) return "";
  return `${formatDuration(w.elapsed_s)}${w.timeout_s ? ` / ${formatDuration(w.timeout_s)}` : ""}`;
}

/** A parallel loop's running row, one per worker in flight: "#14 running · worker 2 · GPU 1". */
export function workerRow(state: LoopState, w: WorkerState): Row {
  const number = w.number ?? 0;
  const phase = phaseLabel(w.phase ?? "running");
  const where = workerText(w.worker, w.gpus);
  const progress = workerProgress(w);
  return {
    id: experimentId(state.tag ?? "", number) + ":running",
    label: `#${number} ${phase.toLowerCase()} · ${where}`,
    description: [progress, oneLine(w.description ?? "")].filter((p) => p).join(" · "),
    tooltip:
      `Experiment #${number} is being made by ${where}: ${phase}${progress ? ` (${progress})` : ""}` +
      (w.description ? `\n\n${oneLine(w.description, 400)}` : "") +
      (w.parent ? `\n\nstarted from \`${w.parent.slice(0, 7)}\`` : ""),
    icon: STATUS_ICONS.running.icon,
    color: "",
    contextValue: "autoresearch.running",
  };
}

/** One worker for a tooltip: "worker 2 · GPU 1: #14 running 0:35 / 10:00 · LR 0.01 -> 0.02". */
export function workerLine(w: WorkerState): string {
  const where = workerText(w.worker, w.gpus);
  if (w.number === null || w.number === undefined) return `${where}: idle`;
  const progress = workerProgress(w);
  const what = oneLine(w.description ?? "", 80);
  return `${where}: #${w.number} ${phaseLabel(w.phase ?? "running").toLowerCase()}${progress ? ` ${progress}` : ""}${what ? ` · ${what}` : ""}`;
}

// ---- status bar -------------------------------------------------------------------------------

export interface StatusText {
  text: string;
  tooltip: string;
  warning: boolean;
}

export const MEMORY_WARNING = 0.9;

function memoryFraction(gpu: GpuInfo): number {
  return gpu.memory_total_mib > 0 ? gpu.memory_used_mib / gpu.memory_total_mib : 0;
}

/** One of a Ray cluster's GPUs, as ray_gpu.py reports them: no memory figures. */
function isClusterGpu(gpu: GpuInfo): boolean {
  return gpu.name === "Ray cluster" && gpu.memory_total_mib === 0;
}

export function gpuLine(gpu: GpuInfo): string {
  if (isClusterGpu(gpu)) return gpu.utilization >= 100 ? "in use" : gpu.utilization > 0 ? `${gpu.utilization.toFixed(0)}% in use` : "free";
  const temp =
    gpu.temperature_c !== null && gpu.temperature_c !== undefined
      ? ` · ${gpu.temperature_c.toFixed(0)}°C`
      : "";
  const power = gpu.power_w ? ` · ${gpu.power_w.toFixed(0)} W` : "";
  return (
    `${gpu.utilization.toFixed(0)}% · ${formatMib(gpu.memory_used_mib)}/` +
    `${formatMib(gpu.memory_total_mib)}${temp}${power}`
  );
}

/**
 * Why there are no GPU figures, in plain words: NVML's errors name a library, not the cause
 * ("NVML Shared Library Not Found" means there is no NVIDIA driver).
 */
export function gpuMessage(message: string | undefined): string {
  const text = (message ?? "").trim();
  if (!text) return "No NVIDIA GPU found on this machine.";
  if (/shared library not found|libnvidia-ml|nvml\.dll/i.test(text)) {
    return "No NVIDIA driver found on this machine, so no GPU figures (NVML, the driver's library, is missing).";
  }
  if (/driver not loaded/i.test(text)) {
    return "The NVIDIA driver is installed but not loaded (is this machine's GPU visible? try nvidia-smi).";
  }
  if (/insufficient permissions|no permission/i.test(text)) {
    return "The NVIDIA driver refused access to the GPUs (insufficient permissions).";
  }
  if (/nvidia-ml-py is not installed/i.test(text)) {
    return "No GPU figures: the daemon's environment lacks nvidia-ml-py (pip install nvidia-ml-py).";
  }
  return text;
}

/** The GPU item while there are no readings because there is no daemon (yet): says which. */
export function gpuWithoutDaemonText(daemon: string, stage: "asking" | "installing" | undefined): StatusText {
  if (stage === "asking") {
    return {
      text: "$(circle-slash) GPU: no daemon",
      tooltip: "No GPU figures: the Autoresearch daemon is not installed yet (see the install offer).",
      warning: false,
    };
  }
  if (stage === "installing") {
    return { text: "$(sync~spin) GPU", tooltip: "No GPU figures yet: installing the Autoresearch daemon.", warning: false };
  }
  if (daemon === "failed" || daemon === "stopped") {
    return {
      text: "$(circle-slash) GPU: no daemon",
      tooltip: "No GPU figures: the Autoresearch daemon is not running (Autoresearch: Restart Daemon; see the Autoresearch log).",
      warning: false,
    };
  }
  if (daemon === "crashed") {
    return { text: "$(sync~spin) GPU", tooltip: "No GPU figures: the Autoresearch daemon exited and is restarting.", warning: false };
  }
  return { text: "$(sync~spin) GPU", tooltip: "Waiting for the Autoresearch daemon to start.", warning: false };
}

/** `users`: which worker of a parallel loop uses each GPU (workers.ts gpuUsers), said on its line. */
export function gpuStatusText(status: GpuStatus | undefined, users?: ReadonlyMap<number, string>): StatusText {
  const gpus = status?.gpus ?? [];
  if (!status || !status.available || gpus.length === 0) {
    return {
      text: "$(circle-slash) No GPU",
      tooltip: gpuMessage(status?.message),
      warning: false,
    };
  }
  if (gpus.every(isClusterGpu)) {
    // A Ray cluster's logical GPUs (run.executor "ray"): in use or free, no figures.
    const busy = gpus.filter((gpu) => gpu.utilization > 0).length;
    const lines = gpus.map((gpu) => `GPU ${gpu.index}: ${gpuLine(gpu)}`);
    return { text: `$(cloud) Ray ${busy}/${gpus.length} GPUs busy`, tooltip: [status.message, ...lines].join("\n"), warning: false };
  }
  const warning = gpus.some((gpu) => memoryFraction(gpu) > MEMORY_WARNING);
  const user = (gpu: GpuInfo) => (users?.has(gpu.index) ? ` · ${users.get(gpu.index)}` : "");
  const tooltip = gpus.map((gpu) => `GPU ${gpu.index} ${gpu.name}: ${gpuLine(gpu)}${user(gpu)}`).join("\n");
  if (gpus.length === 1) {
    const gpu = gpus[0]!;
    const temp =
      gpu.temperature_c !== null && gpu.temperature_c !== undefined
        ? ` ${gpu.temperature_c.toFixed(0)}°C`
        : "";
    return {
      text: `$(pulse) ${gpu.utilization.toFixed(0)}% ${formatMib(gpu.memory_used_mib)}/${formatMib(gpu.memory_total_mib)}${temp}`,
      tooltip,
      warning,
    };
  }
  const avg = gpus.reduce((sum, gpu) => sum + gpu.utilization, 0) / gpus.length;
  const maxMem = Math.max(...gpus.map(memoryFraction));
  const temps = gpus.map((gpu) => gpu.temperature_c).filter((t): t is number => typeof t === "number");
  const hottest = temps.length ? ` ${Math.max(...temps).toFixed(0)}°C` : "";
  return {
    text: `$(pulse) ${gpus.length} GPUs ${avg.toFixed(0)}% mem ≤${(maxMem * 100).toFixed(0)}%${hottest}`,
    tooltip,
    warning,
  };
}

export function loopStatusText(state: LoopState | undefined): StatusText | undefined {
  if (!state || (state.mode ?? "none") === "none") return undefined;
  if (state.mode === "observer") {
    return {
      text: `$(eye) ${state.tag || "results.tsv"}`,
      tooltip: `Observing a loop run by another tool: ${countsText(state.counts)}`,
      warning: false,
    };
  }
  if (waitsForUserEdit(state)) {
    const number = state.current !== null && state.current !== undefined ? ` #${state.current}` : "";
    return {
      text: `$(edit) Your edit${number}`,
      tooltip: `Autoresearch ${state.tag ? `(${state.branch || state.tag}) ` : ""}waits for your edit${number}: ${USER_EDIT_HINT}.`,
      warning: false,
    };
  }
  const icon =
    state.phase === "paused"
      ? "$(debug-pause)"
      : state.phase === "failed"
        ? "$(error)"
        : state.phase === "stopped" || state.phase === "idle"
          ? "$(beaker)"
          : "$(sync~spin)";
  const number = state.current !== null && state.current !== undefined ? ` #${state.current}` : "";
  const progress =
    state.elapsed_s !== null && state.elapsed_s !== undefined && state.phase === "running"
      ? ` ${formatDuration(state.elapsed_s)}${state.timeout_s ? `/${formatDuration(state.timeout_s)}` : ""}`
      : "";
  const best = state.best !== null && state.best !== undefined ? ` · best ${formatMetric(state.best)}` : "";
  const left =
    state.remaining !== null && state.remaining !== undefined ? `, ${state.remaining} left` : "";
  const workers = state.workers ?? [];
  if (workers.length > 0 && ACTIVE_PHASES.includes(state.phase)) {
    // A parallel loop: how busy the machine is; the tooltip says what each worker does.
    return {
      text: `${icon} ${state.phase === "running" ? "" : `${phaseLabel(state.phase)} · `}${busyText(workers)}`,
      tooltip:
        `Autoresearch ${state.tag ? `(${state.branch || state.tag}) ` : ""}` +
        `${phaseLabel(state.phase)}, iteration ${state.iteration ?? 0}${left}${best}\n` +
        workers.map(workerLine).join("\n") +
        (state.message ? `\n${state.message}` : ""),
      warning: false,
    };
  }
  return {
    text: `${icon} ${phaseLabel(state.phase)}${number}${progress}`,
    tooltip:
      `Autoresearch ${state.tag ? `(${state.branch || state.tag}) ` : ""}` +
      `${phaseLabel(state.phase)}, iteration ${state.iteration ?? 0}${left}${best}` +
      (state.message ? `\n${state.message}` : ""),
    warning: state.phase === "failed",
  };
}

/** What to tell the user when the loop's phase changes (undefined: nothing). */
export function phaseMessage(
  before: LoopState | undefined,
  after: LoopState,
): { severity: "info" | "error"; text: string } | undefined {
  if (after.mode !== "loop" || !before || before.phase === after.phase) return undefined;
  const wasActive = before.mode === "loop" && before.phase !== "stopped" && before.phase !== "failed" && before.phase !== "idle";
  if (after.phase === "failed") {
    return { severity: "error", text: `Autoresearch: the loop failed. ${oneLine(after.message ?? "", 300)}`.trim() };
  }
  // Stopped by itself ("stopped: why"): the loop's notice says it, with the best to open.
  if (after.phase === "stopped" && after.message?.startsWith("stopped: ")) return undefined;
  if (after.phase === "stopped" && wasActive) {
    const best =
      after.best !== null && after.best !== undefined
        ? `, best ${after.metric || "metric"} ${formatMetric(after.best)}${after.best_number !== null && after.best_number !== undefined ? ` (#${after.best_number})` : ""}`
        : "";
    return { severity: "info", text: `Autoresearch: the loop stopped after ${countsText(after.counts)}${best}.` };
  }
  return undefined;
}

/**
 * What restarting the daemon would do to the loop, to ask before doing it (undefined: nothing, no
 * need to ask). An editor loop runs inside the daemon (its model is this window's) and stops; every
 * other loop runs detached and the daemon attaches to it again, though a manual one pauses while
 * no editor is attached and waits for Resume.
 */
export function restartCost(state: LoopState | undefined): string | undefined {
  if (state?.mode !== "loop" || !ACTIVE_PHASES.includes(state.phase)) return undefined;
  if (state.agent === "editor") return "The running loop stops";
  if (state.agent === "manual" && state.phase !== "paused") return "The loop pauses until you resume it";
  return undefined;
}
