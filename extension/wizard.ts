// The Start Loop wizard's logic, pure: the agent choices, parsing and checking each answer, and
// the config the answers make (commands.ts asks the questions through quick inputs).
import type { Agent, Config, Direction, MetricCandidate } from "./protocol";

export interface AgentChoice {
  id: string;
  label: string;
  detail: string;
  agent: Agent;
}

export const AGENT_CHOICES: readonly AgentChoice[] = [
  {
    id: "sweep",
    label: "Sweep",
    detail: "No LLM: Optuna tunes the numeric constants in the files in scope",
    agent: { kind: "sweep" },
  },
  {
    id: "manual",
    label: "Manual",
    detail: "You edit the files, then run Autoresearch: Run Experiment",
    agent: { kind: "manual" },
  },
  {
    id: "editor",
    label: "The editor's chat model",
    detail: "A chat model in VS Code (Copilot or another provider): no CLI or API key needed",
    agent: { kind: "editor" },
  },
  { id: "claude", label: "Claude Code", detail: "The `claude` CLI, one fresh call per iteration", agent: { kind: "command", preset: "claude" } },
  { id: "codex", label: "Codex", detail: "The `codex` CLI, one fresh call per iteration", agent: { kind: "command", preset: "codex" } },
  { id: "aider", label: "aider", detail: "The `aider` CLI, one fresh call per iteration", agent: { kind: "command", preset: "aider" } },
  { id: "gemini", label: "Gemini CLI", detail: "The `gemini` CLI, one fresh call per iteration", agent: { kind: "command", preset: "gemini" } },
  { id: "opencode", label: "OpenCode", detail: "The `opencode` CLI, one fresh call per iteration", agent: { kind: "command", preset: "opencode" } },
  {
    id: "custom",
    label: "Custom command…",
    detail: "Any coding-agent CLI: a template with {prompt_file}",
    agent: { kind: "command", preset: "custom" },
  },
];

/** The choice matching a detected agent config (sweep when nothing matches). */
export function agentChoiceFor(agent: Agent | undefined): AgentChoice {
  const kind = agent?.kind ?? "sweep";
  if (kind !== "command") return AGENT_CHOICES.find((c) => c.id === kind)!;
  const preset = agent?.preset ?? "custom";
  return AGENT_CHOICES.find((c) => c.id === preset) ?? AGENT_CHOICES.find((c) => c.id === "custom")!;
}

/** The shell-command prefix in the extraction answer; anything else is a regex. */
export const SHELL_PREFIX = "$ ";

export type Extraction = { pattern: string; extract: null } | { pattern: null; extract: string };

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\\-#&~\s]/g, (ch) => `\\${ch}`);
}

/**
 * The extraction answer's default: the detected one, with the metric's name swapped in when the
 * user renamed the metric and the detected regex names the old one (detect builds it from it).
 */
export function extractionText(config: Config, metricName = config.metric.name): string {
  if (config.metric.extract) return `${SHELL_PREFIX}${config.metric.extract}`;
  const pattern = config.metric.pattern ?? "";
  const before = config.metric.name;
  if (!pattern || !before || metricName.trim() === before) return pattern;
  const old = escapeRegex(before);
  return pattern.includes(old) ? pattern.split(old).join(escapeRegex(metricName.trim())) : pattern;
}

export function parseExtraction(text: string): Extraction {
  const trimmed = text.trim();
  if (trimmed.startsWith("$")) return { pattern: null, extract: trimmed.slice(1).trim() };
  return { pattern: trimmed, extract: null };
}

/** An error message for the extraction answer, or undefined when it looks right. */
export function checkExtraction(text: string): string | undefined {
  const parsed = parseExtraction(text);
  if (parsed.extract !== null) {
    return parsed.extract ? undefined : "Write the shell command after `$ `.";
  }
  if (!parsed.pattern) return "Write a regex with one group around the number, or `$ ` and a shell command.";
  // Python and JavaScript regexes differ; check what JavaScript can, after Python's named groups.
  let compiled: RegExp;
  try {
    compiled = new RegExp(`${parsed.pattern.replace(/\(\?P</g, "(?<")}|`, "m");
  } catch {
    return undefined; // Python may accept what JavaScript does not: the daemon has the last word.
  }
  const groups = (compiled.exec("")?.length ?? 1) - 1;
  return groups === 1 ? undefined : `The regex has ${groups} groups; it needs exactly one, around the number.`;
}

/** Empty = run until stopped (null); otherwise a positive whole number of experiments. */
export function parseLoopCount(text: string): number | null | Error {
  const trimmed = text.trim();
  if (trimmed === "" || /^(∞|unbounded|forever)$/i.test(trimmed)) return null;
  if (!/^\d+$/.test(trimmed) || Number(trimmed) < 1) {
    return new Error("Enter a positive whole number, or leave it empty to run until stopped.");
  }
  return Number(trimmed);
}

export interface Answers {
  metric: string;
  direction: Direction;
  command: string;
  extraction: string;
  files: string[];
  guard: string;
  agent: AgentChoice;
  customCommand?: string;
  /** For the editor's chat model: the one picked (vscode.lm.selectChatModels). */
  model?: { vendor: string; family: string };
}

/** The detected config with the answers put in; everything not asked is kept as detected. */
export function buildConfig(detected: Config, answers: Answers): Config {
  const extraction = parseExtraction(answers.extraction);
  const agent: Agent = { ...(detected.agent ?? {}), ...answers.agent.agent };
  if (answers.agent.id === "custom") agent.command = answers.customCommand ?? agent.command ?? null;
  else if (agent.kind === "command") agent.command = null;
  if (agent.kind !== "command") {
    agent.preset = null;
    agent.command = null;
  }
  if (agent.kind === "editor") {
    agent.vendor = answers.model?.vendor ?? agent.vendor ?? null;
    agent.family = answers.model?.family ?? agent.family ?? null;
  } else {
    // A model belongs to the editor agent only (the daemon refuses it with another kind).
    delete agent.vendor;
    delete agent.family;
  }
  const offLimits = (detected.scope?.off_limits ?? []).filter((glob) => !answers.files.includes(glob));
  return {
    ...detected,
    metric: { ...detected.metric, name: answers.metric.trim(), direction: answers.direction, ...extraction },
    run: { ...detected.run, command: answers.command.trim(), guard: answers.guard.trim() || null },
    scope: { ...(detected.scope ?? {}), files: answers.files, off_limits: offLimits },
    agent,
  };
}

/** Items for the scope multi-select: detected candidates and scope files first, then the rest. */
export function scopeItems(
  candidates: string[],
  selected: string[],
  workspaceFiles: string[],
): { path: string; picked: boolean; candidate: boolean }[] {
  const seen = new Set<string>();
  const items: { path: string; picked: boolean; candidate: boolean }[] = [];
  const add = (path: string, candidate: boolean) => {
    if (seen.has(path)) return;
    seen.add(path);
    items.push({ path, picked: selected.includes(path), candidate });
  };
  for (const path of selected) add(path, true);
  for (const path of candidates) add(path, true);
  for (const path of [...workspaceFiles].sort()) add(path, false);
  return items;
}

export interface MetricItem {
  label: string;
  description: string;
  /** The metric's name; null for "Another name…", which asks for one. */
  name: string | null;
}

/**
 * The metric quick pick, when the command prints several metric-like lines: the detected one
 * first (daemon order otherwise: held-out quality before training, counters last), each with
 * its last value when a run.log had it, then "Another name…". Empty when there is nothing to
 * choose from, and the wizard asks for the name as before.
 */
export function metricItems(metrics: MetricCandidate[] | undefined, detected: string): MetricItem[] {
  const found = metrics ?? [];
  if (found.length < 2) return [];
  const ordered = [...found.filter((m) => m.name === detected), ...found.filter((m) => m.name !== detected)];
  const items = ordered.map((m) => ({
    label: m.name,
    description: [
      m.value === null || m.value === undefined ? "" : `last ${m.value}`,
      m.source === "run.log" ? "in run.log" : m.source ? `printed by ${m.source}` : "",
      m.name === detected ? "likeliest" : "",
    ].filter(Boolean).join(" · "),
    name: m.name,
  }));
  return [...items, { label: "Another name…", description: "type the metric's name", name: null }];
}

export interface ModelItem {
  label: string;
  description: string;
  vendor: string;
  family: string;
}

/** The wizard's model quick-pick items: one per vendor/family the editor offers (ids deduplicated). */
export function modelItems(models: readonly { vendor: string; family: string; name: string; version?: string }[]): ModelItem[] {
  const seen = new Set<string>();
  const items: ModelItem[] = [];
  for (const model of models) {
    const key = `${model.vendor}/${model.family}`;
    if (seen.has(key)) continue;
    seen.add(key);
    items.push({ label: model.name || model.family, description: key, vendor: model.vendor, family: model.family });
  }
  return items;
}
