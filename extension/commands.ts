// The palette commands (category "Autoresearch") and the Start Loop wizard. Each handler is small
// and asks the daemon; errors become one clear message (and a log line).
import * as path from "node:path";
import * as vscode from "vscode";
import type { ChartPanel } from "./chart/chart";
import { DaemonUnavailable, type Daemon } from "./daemon/daemon";
import { openChanges, openFileDiff } from "./diffs/diffs";
import { experimentRow, waitsForUserEdit } from "./format";
import type { StatusBar } from "./statusBar/statusBar";
import { ACTIVE_PHASES, Method, type Agent, type Config, type DetectResult, type Direction } from "./protocol";
import type { RunLog } from "./diffs/runLog";
import type { Session } from "./session";
import type { Node, ResultsModel } from "./tree/treeModel";
import {
  AGENT_CHOICES,
  agentChoiceFor,
  buildConfig,
  checkExtraction,
  extractionText,
  metricItems,
  parseLoopCount,
  scopeItems,
  SHELL_PREFIX,
  type AgentChoice,
  modelItems,
  type ModelItem,
} from "./wizard";

import type { Notify } from "./notify";

export type { Notify };

export interface CommandDeps {
  daemon: Daemon;
  session: Session;
  model: ResultsModel;
  chart: ChartPanel;
  runLog: RunLog;
  statusBar: StatusBar;
  log: vscode.LogOutputChannel;
  notify: Notify;
}

type FileNode = Extract<Node, { kind: "file" }>;
type ExperimentNode = Extract<Node, { kind: "experiment" }>;

const TITLE = "Autoresearch: Start Loop";
const STEPS = 8;

export function registerCommands(deps: CommandDeps): vscode.Disposable[] {
  const { daemon, session, model, log, notify } = deps;

  const guarded =
    <A extends unknown[]>(name: string, handler: (...args: A) => Promise<unknown>) =>
    async (...args: A) => {
      try {
        await handler(...args);
      } catch (error) {
        const text = error instanceof Error ? error.message : String(error);
        log.error(`${name}: ${text}`);
        // No second message when the daemon's start already told the user why (the install offer).
        if (!(error instanceof DaemonUnavailable && error.told)) notify("error", `Autoresearch: ${text}`);
      }
    };

  // The results of pause/resume/stop are not applied: they are snapshots taken on a daemon
  // worker thread and can be older than a stateChanged already received. The loop's own
  // notifications say what happened.
  const loopRequest = async (method: typeof Method.pause | typeof Method.resume) => {
    await daemon.request(method, { root: session.requireRoot() });
  };

  const stop = async (now: boolean) => {
    await daemon.request(Method.stop, { root: session.requireRoot(), now });
    notify("info", now ? "Autoresearch: stopped." : "Autoresearch: stopping after the running experiment.");
  };

  const openExperimentChanges = async (tag: string, number: number) => {
    const root = session.requireRoot();
    const experiment = model.experiment(tag, number);
    const changes = await daemon.request(Method.changes, {
      root,
      tag: tag || null,
      number,
      commit: experiment?.commit || null,
    });
    const metricName = tag === model.currentTag ? (model.state?.metric ?? "") : "";
    await openChanges(root, changes, metricName, experiment?.description ?? "", log);
  };

  const pickExperiment = async (): Promise<ExperimentNode | undefined> => {
    const tag = model.currentTag;
    if (tag === undefined) throw new Error("No experiments yet.");
    await model.sessionChildren(tag);
    const summary = model.summary(tag);
    const items = model
      .loaded(tag)
      .slice(-500)
      .reverse()
      .map((experiment) => {
        const row = experimentRow(experiment, model.reference(tag, experiment.number), summary.bestNumber, model.state?.metric ?? "");
        return { label: `$(${row.icon}) ${row.label}`, description: row.description, number: experiment.number };
      });
    const picked = await vscode.window.showQuickPick(items, {
      title: "Open Experiment Changes",
      placeHolder: "Experiment (newest first)",
      matchOnDescription: true,
    });
    return picked ? { kind: "experiment", tag, number: picked.number } : undefined;
  };

  const commands: Record<string, (...args: never[]) => Promise<unknown>> = {
    "autoresearch.startLoop": () => startLoop(deps),
    "autoresearch.stop": () => stop(false),
    "autoresearch.stopNow": () => stop(true),
    "autoresearch.pause": () => loopRequest(Method.pause),
    "autoresearch.resume": () => loopRequest(Method.resume),
    "autoresearch.runExperiment": async () => {
      const description = await vscode.window.showInputBox({
        title: "Autoresearch: Run Experiment",
        prompt: "What did you change? (the experiment's description; optional)",
        ignoreFocusOut: true,
      });
      if (description === undefined) return;
      const ack = await daemon.request(Method.runExperiment, { root: session.requireRoot(), description });
      if (!ack.ok) notify("warning", `Autoresearch: ${ack.message || "the experiment could not start."}`);
    },
    "autoresearch.openExperimentChanges": async (node?: ExperimentNode) => {
      const target = node?.kind === "experiment" ? node : await pickExperiment();
      if (target) await openExperimentChanges(target.tag, target.number);
    },
    "autoresearch.openFileDiff": async (node?: FileNode) => {
      if (node?.kind !== "file") return;
      const experiment = model.experiment(node.tag, node.number);
      await openFileDiff(session.requireRoot(), node.commit, node.parent, node.change, {
        number: node.number,
        status: experiment?.status ?? "",
        metric: experiment?.metric,
      });
    },
    "autoresearch.openFile": async (node?: FileNode) => {
      if (node?.kind !== "file") return;
      await vscode.window.showTextDocument(vscode.Uri.file(path.join(session.requireRoot(), node.change.path)));
    },
    "autoresearch.openRunLog": async (node?: ExperimentNode) => {
      if (node?.kind === "experiment") await deps.runLog.openExperiment(node.tag, node.number);
      else await deps.runLog.openLive();
    },
    "autoresearch.openExperimentLog": async (node?: ExperimentNode) => {
      const target = node?.kind === "experiment" ? node : await pickExperiment();
      if (target) await deps.runLog.openExperiment(target.tag, target.number);
    },
    "autoresearch.showChart": async () => deps.chart.show(),
    "autoresearch.restartDaemon": async () => {
      model.reset();
      await daemon.restart();
    },
    "autoresearch.refresh": () => session.reset(),
    "autoresearch.addGuidance": async () => {
      const text = await vscode.window.showInputBox({
        title: "Autoresearch: Steer the Agent",
        prompt: "Guidance for the next iterations (goes into the agent's prompt)",
        ignoreFocusOut: true,
      });
      if (!text) return;
      const ack = await daemon.request(Method.guidance, { root: session.requireRoot(), text });
      notify(ack.ok ? "info" : "warning", `Autoresearch: ${ack.message || (ack.ok ? "guidance saved." : "guidance not saved.")}`);
    },
    "autoresearch.showGpus": () => deps.statusBar.showDetails(),
    "autoresearch.showLog": async () => log.show(),
    "autoresearch.showLoopActions": async () => {
      // An ended loop keeps mode "loop" (phase stopped/failed): offer Pause/Stop only while active.
      const running = !!session.state && session.state.mode === "loop" && ACTIVE_PHASES.includes(session.state.phase);
      const paused = session.state?.phase === "paused";
      const actions = [
        { label: "$(output) Open Run Log", command: "autoresearch.openRunLog", show: true },
        { label: "$(graph-line) Show Chart", command: "autoresearch.showChart", show: true },
        { label: "$(beaker) Run Experiment", command: "autoresearch.runExperiment", show: waitsForUserEdit(session.state) },
        { label: "$(debug-pause) Pause", command: "autoresearch.pause", show: running && !paused },
        { label: "$(debug-continue) Resume", command: "autoresearch.resume", show: paused },
        { label: "$(debug-stop) Stop", command: "autoresearch.stop", show: running },
        { label: "$(list-tree) Show Experiments", command: "autoresearch.experiments.focus", show: true },
      ].filter((a) => a.show);
      const picked = await vscode.window.showQuickPick(actions, { title: "Autoresearch" });
      if (picked) await vscode.commands.executeCommand(picked.command);
    },
  };

  return Object.entries(commands).map(([name, handler]) =>
    vscode.commands.registerCommand(name, guarded(name, handler as (...args: unknown[]) => Promise<unknown>)),
  );
}

// ---- Start Loop -------------------------------------------------------------------------------

class Cancelled extends Error {}

function step(n: number): string {
  return `${TITLE} (${n}/${STEPS})`;
}

async function input(n: number, options: vscode.InputBoxOptions): Promise<string> {
  const value = await vscode.window.showInputBox({ title: step(n), ignoreFocusOut: true, ...options });
  if (value === undefined) throw new Cancelled();
  return value;
}

async function pick<T extends vscode.QuickPickItem>(n: number, items: T[], placeHolder: string): Promise<T> {
  const value = await vscode.window.showQuickPick(items, { title: step(n), placeHolder, ignoreFocusOut: true });
  if (value === undefined) throw new Cancelled();
  return value;
}

async function workspaceFiles(): Promise<string[]> {
  const uris = await vscode.workspace.findFiles(
    "**/*",
    "**/{.git,node_modules,.venv,venv,__pycache__,.autoresearch,dist,out,build}/**",
    2000,
  );
  return uris.map((uri) => vscode.workspace.asRelativePath(uri, false).replace(/\\/g, "/"));
}

async function loopCount(n: number): Promise<number | null> {
  const text = await input(n, {
    prompt: "How many experiments after the baseline? Leave empty to run until you stop it.",
    placeHolder: "empty = until stopped",
    validateInput: (value) => {
      const parsed = parseLoopCount(value);
      return parsed instanceof Error ? parsed.message : undefined;
    },
  });
  return parseLoopCount(text) as number | null;
}

async function askConfig(detected: DetectResult): Promise<Config> {
  const config = detected.config;
  // What detect could not infer says so; the rest is prefilled and taken with Enter.
  const guess = (key: string) => (detected.ask.includes(key) ? " — not detected, please fill in" : "");
  // Several metric-like lines printed: pick one (the likeliest first), or type another name.
  const choices = metricItems(detected.metrics, config.metric.name);
  const chosen = choices.length ? await pick(1, choices, "Which printed value is the metric?") : null;
  const metric = chosen?.name ?? (await input(1, {
    prompt: `The metric's name, as the command prints it${guess("metric.name")}`,
    value: config.metric.name,
    validateInput: (value) => (value.trim() ? undefined : "Name the metric, e.g. val_bpb."),
  }));
  const direction = await pick<vscode.QuickPickItem & { direction: Direction }>(
    2,
    [
      { label: "Lower is better", description: "loss, error, bits per byte, time", direction: "lower" },
      { label: "Higher is better", description: "accuracy, score, throughput", direction: "higher" },
    ],
    `Is a lower or a higher ${metric.trim()} better?`,
  );
  const command = await input(3, {
    prompt: `The command that runs one experiment (its output goes to run.log)${guess("run.command")}`,
    value: config.run.command,
    validateInput: (value) => (value.trim() ? undefined : "Set the command that runs one experiment."),
  });
  const extraction = await input(4, {
    prompt: `How to read ${metric.trim()} from run.log: a regex with one group (last match wins), or "${SHELL_PREFIX}" and a shell command`,
    value: extractionText(config, metric),
    validateInput: checkExtraction,
  });
  const items = scopeItems(detected.candidates, config.scope?.files ?? [], await workspaceFiles());
  let files: string[] = [];
  while (files.length === 0) {
    const picked = await vscode.window.showQuickPick(
      items.map((item) => ({
        label: item.path,
        picked: item.picked,
        description: item.candidate ? "suggested" : undefined,
      })),
      {
        title: step(5),
        placeHolder: `Files the agent may edit (in scope)${guess("scope.files")}`,
        canPickMany: true,
        ignoreFocusOut: true,
      },
    );
    if (picked === undefined) throw new Cancelled();
    files = picked.map((item) => item.label);
    if (files.length === 0) void vscode.window.showWarningMessage("Pick at least one file in scope.");
  }
  const guard = await input(6, {
    prompt: "A guard command that must pass before a win is kept, e.g. the tests (optional)",
    value: config.run.guard ?? "",
  });
  const detectedAgent = agentChoiceFor(config.agent);
  const ordered = [detectedAgent, ...AGENT_CHOICES.filter((choice) => choice !== detectedAgent)];
  const agent = await pick<vscode.QuickPickItem & { choice: AgentChoice }>(
    7,
    ordered.map((choice) => ({ label: choice.label, detail: choice.detail, choice })),
    "Who makes the edits?",
  );
  let customCommand: string | undefined;
  if (agent.choice.id === "custom") {
    customCommand = await input(7, {
      prompt: "The agent's command template; {prompt_file} is replaced by the prompt's path",
      value: config.agent?.command ?? "",
      validateInput: (value) => (value.includes("{prompt_file}") ? undefined : "Use {prompt_file} in the template."),
    });
  }
  let model: { vendor: string; family: string } | undefined;
  if (agent.choice.id === "editor") model = await pickModel(config.agent);
  return buildConfig(config, {
    model,
    metric,
    direction: direction.direction,
    command,
    extraction,
    files,
    guard,
    agent: agent.choice,
    customCommand,
  });
}

/** The editor's chat model for agent.kind "editor", from those VS Code offers now. */
async function pickModel(agent: Agent | undefined): Promise<{ vendor: string; family: string }> {
  const models = await vscode.lm.selectChatModels();
  const items = modelItems(models);
  if (items.length === 0) {
    void vscode.window.showErrorMessage(
      "Autoresearch: VS Code has no chat model. Install or sign in to a chat model provider (e.g. GitHub Copilot Chat), or choose another agent.",
    );
    throw new Cancelled();
  }
  const saved = items.find((item) => item.vendor === agent?.vendor && item.family === agent?.family);
  const ordered = saved ? [saved, ...items.filter((item) => item !== saved)] : items;
  const picked = await pick<ModelItem>(7, ordered, "Which chat model edits? (VS Code asks your consent on its first use)");
  return { vendor: picked.vendor, family: picked.family };
}

async function startLoop(deps: CommandDeps): Promise<void> {
  const { daemon, session, notify } = deps;
  const root = session.requireRoot();
  if (session.state?.mode === "loop" && session.state.phase !== "stopped" && session.state.phase !== "failed" && session.state.phase !== "idle") {
    notify("warning", "Autoresearch: the loop is already running. Stop it first.");
    return;
  }
  try {
    // The daemon first (it may be waiting for the install offer's answer, or installing): the
    // detecting progress below then spins for detecting only.
    if (daemon.status !== "ready") {
      await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: "Autoresearch: Start Loop waits for the daemon" },
        () => daemon.whenReady(),
      );
    }
    const detected = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "Autoresearch: detecting settings" },
      () => daemon.request(Method.detect, { root }),
    );
    const hasToml = await exists(vscode.Uri.file(path.join(root, "autoresearch.toml")));
    let config: Config | null = null;
    let useToml = false;
    if (hasToml || detected.resumable) {
      const choice = await pick(
        1,
        [
          {
            label: detected.resumable ? "Resume the session" : "Start with autoresearch.toml",
            detail: detected.resumable
              ? "Continue the existing branch and results.tsv from the last keep"
              : "Use the settings saved in autoresearch.toml",
            toml: true,
          },
          { label: "Review the settings…", detail: "Go through the settings, prefilled", toml: false },
        ],
        "How to start?",
      );
      useToml = choice.toml && hasToml;
    }
    if (!useToml) config = await askConfig(detected);
    const loop = await loopCount(STEPS);
    const state = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: "Autoresearch: starting the loop" },
      // Detached: the loop outlives this window (a manual one paused until a window resumes it).
      () => daemon.request(Method.start, { root, config, loop, detach: true }),
    );
    if (session.isMine(state.root)) session.set(state);
    notify("info", `Autoresearch: started${state.branch ? ` on ${state.branch}` : ""}${loop ? ` (${loop} experiments)` : ""}.`);
    await vscode.commands.executeCommand("autoresearch.experiments.focus");
  } catch (error) {
    if (error instanceof Cancelled) return;
    throw error;
  }
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}
