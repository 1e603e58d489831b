// activate(): wiring only. The daemon's notifications feed the model, the views and the locks.
import * as vscode from "vscode";
import { ChartPanel } from "./chart";
import { registerCommands, type Notify } from "./commands";
import { Daemon } from "./daemon";
import { RevisionFileSystem, REV_SCHEME } from "./diffs";
import { StateDump, startDump, toDumpRow } from "./e2eState";
import { phaseLabel, phaseMessage } from "./format";
import { StatusBar } from "./gpuStatus";
import { Locks } from "./locks";
import { ACTIVE_PHASES, Method, type LoopState } from "./protocol";
import { onInterpreterChange, usablePython, type Stage } from "./python";
import { ResultsTree } from "./resultsTree";
import { LOG_SCHEME, RunLog } from "./runLog";
import { pickFolder, Session } from "./session";
import { ResultsModel } from "./treeModel";

// Settings the daemon is started with; others (restartOnCrash, statusBar, ...) need no restart.
const RESTART_SETTINGS = ["autoresearch.python", "autoresearch.daemon.args", "autoresearch.daemon.env"];

let deactivating: (() => Promise<void>) | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("Autoresearch", { log: true });
  const dump = new StateDump();
  const statusBar = new StatusBar();
  let stageView: vscode.TreeView<unknown> | undefined; // the results view, once made
  const onStage = (stage: Stage) => {
    statusBar.setStage(stage);
    if (!stageView) return;
    stageView.message =
      stage === "asking"
        ? "The Autoresearch daemon is not installed: answer the notification (Install, or choose an interpreter)."
        : stage === "installing"
          ? "Installing the Autoresearch daemon into a private environment…"
          : undefined;
  };
  const pythonDeps = { log, extensionPath: context.extensionPath, storagePath: context.globalStorageUri.fsPath, onStage };
  const daemon = new Daemon(log, (interactive) => usablePython(pickFolder(), pythonDeps, interactive), pickFolder);
  const session = new Session(daemon, log);
  const model = new ResultsModel((tag, offset, limit, newestFirst) =>
    daemon.request(Method.experiments, { root: session.requireRoot(), tag, offset, limit, newest_first: newestFirst }),
  );
  const tree = new ResultsTree(model, daemon, session, log);
  model.onChange(() => session.setHasSessions(model.hasSessions()));
  const view = vscode.window.createTreeView("autoresearch.experiments", { treeDataProvider: tree, showCollapseAll: true });
  stageView = view as vscode.TreeView<unknown>;
  const locks = new Locks(context.workspaceState, pickFolder, log);
  const runLog = new RunLog(daemon, () => session.requireRoot());
  const notify: Notify = (severity, text) => {
    dump.update({ lastMessage: { severity, text, at: new Date().toISOString() } });
    const show =
      severity === "error"
        ? vscode.window.showErrorMessage
        : severity === "warning"
          ? vscode.window.showWarningMessage
          : vscode.window.showInformationMessage;
    void show(text);
  };
  const openExperiment = async (tag: string, number: number) => {
    await vscode.commands.executeCommand("autoresearch.openExperimentChanges", { kind: "experiment", tag, number });
  };
  const chart = new ChartPanel(context.extensionUri, model, openExperiment, log);

  context.subscriptions.push(
    log,
    daemon,
    session,
    tree,
    view,
    locks,
    statusBar,
    runLog,
    chart,
    vscode.workspace.registerFileSystemProvider(REV_SCHEME, new RevisionFileSystem(daemon), {
      isReadonly: true,
      isCaseSensitive: true,
    }),
    vscode.window.registerFileDecorationProvider(locks),
    vscode.workspace.registerTextDocumentContentProvider(LOG_SCHEME, runLog),
    ...registerCommands({ daemon, session, model, chart, runLog, statusBar, log, notify }),
  );

  // A previous window that crashed with files locked: unlock them before anything else.
  await locks.release("left locked by a previous session");

  let lastTag: string | undefined;
  let lastState: LoopState | undefined;
  context.subscriptions.push(
    session.onDidChangeState((state: LoopState | undefined) => {
      const message = state && phaseMessage(lastState, state);
      if (message) notify(message.severity, message.text);
      lastState = state;
      if (state) model.setState(state);
      statusBar.setLoop(state);
      view.description = describe(state);
      // The loop ended (or there is none): nothing stays locked. An observed loop run by another
      // process is left to its locksChanged notifications.
      if (state && state.mode !== "observer" && !ACTIVE_PHASES.includes(state.phase)) {
        void locks.release(`loop ${state.phase}`);
      }
      if (model.currentTag !== lastTag) {
        lastTag = model.currentTag;
        void chart.reset();
      } else {
        chart.refreshSummary();
      }
    }),
    daemon.onNotification(Method.experimentRecorded, (event) => {
      if (!session.isMine(event.root)) return;
      model.record(event);
      chart.add(event.tag, event.experiment);
    }),
    daemon.onNotification(Method.gpuStatus, (status) => statusBar.setGpu(status)),
    daemon.onNotification(Method.locksChanged, (event) => {
      if (session.isMine(event.root)) void locks.apply(event);
    }),
    daemon.onNotification(Method.logAppended, (event) => {
      if (session.isMine(event.root)) runLog.append(event);
    }),
    daemon.onDidNotify((method) => dump.update({ lastNotification: { method, at: new Date().toISOString() } })),
    daemon.onDidChangeStatus((status) => {
      statusBar.setDaemon(status);
      if (status === "crashed" || status === "failed") statusBar.setGpu(undefined); // stale figures
      if (status === "crashed") {
        void locks.release("the daemon exited");
        view.message = "The Autoresearch daemon exited; restarting…";
      } else if (status === "ready") {
        view.message = undefined;
        model.reset();
        lastTag = undefined;
        void daemon.request(Method.gpus, { root: session.root ?? null }).then(
          (gpus) => statusBar.setGpu(gpus),
          (error: unknown) => log.warn(`gpus: ${String(error)}`),
        );
      } else if (status === "failed") {
        view.message = undefined;
      }
    }),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (RESTART_SETTINGS.some((key) => event.affectsConfiguration(key))) {
        log.info("The daemon's settings changed: restarting it");
        scheduleRestart();
      }
      if (event.affectsConfiguration("autoresearch.statusBar")) statusBar.refresh();
    }),
    vscode.workspace.onDidChangeWorkspaceFolders(() => {
      model.reset();
      void session.refresh();
    }),
    await onInterpreterChange(() => {
      if (!vscode.workspace.getConfiguration("autoresearch").get<string>("python")) scheduleRestart();
    }),
    startDump(
      dump,
      {
        daemon: () => daemon.status,
        root: () => session.root ?? "",
        loop: () => ({ phase: session.state?.phase ?? "idle", mode: session.state?.mode ?? "none" }),
        tree: async () => {
          const rows = await model.currentRows();
          return { session: rows.session ? toDumpRow(rows.session) : null, items: rows.items.map(toDumpRow) };
        },
        statusBar: () => ({
          gpu: statusBar.gpuText,
          gpuTooltip: statusBar.gpuTooltip,
          gpuWarning: statusBar.gpuWarning,
          loop: statusBar.loopText,
        }),
        locks: () => ({
          locked: [...locks.lockedPaths],
          offLimits: [...locks.offLimitsPaths],
          readonlyInclude: locks.current() ?? null,
        }),
        chart: () => ({ open: chart.open, points: chart.points }),
      },
      [
        (f) => tree.onDidRefresh(f),
        (f) => session.onDidChangeState(f),
        (f) => statusBar.onDidChange(f),
        (f) => locks.onDidChange(f),
        (f) => chart.onDidChange(f),
        (f) => daemon.onDidChangeStatus(f),
      ],
    ),
  );

  let restartTimer: ReturnType<typeof setTimeout> | undefined;
  function scheduleRestart(): void {
    clearTimeout(restartTimer);
    restartTimer = setTimeout(() => void restartUnlessLooping(), 500);
  }

  /** A restart abandons a running experiment: never do that without asking. */
  async function restartUnlessLooping(): Promise<void> {
    const state = session.state;
    if (state?.mode === "loop" && ACTIVE_PHASES.includes(state.phase)) {
      const now = "Restart Now (stops the loop)";
      const answer = await vscode.window.showWarningMessage(
        "Autoresearch: the daemon settings changed. Restart the daemon now? The running loop stops; " +
          "otherwise the new settings apply at the next restart (Autoresearch: Restart Daemon).",
        now,
        "Later",
      );
      if (answer !== now) return;
    }
    model.reset();
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "Autoresearch: restarting the daemon" },
      () => daemon.restart(),
    );
    // A failed start told the user why already (the start is interactive).
    if (daemon.status === "ready") notify("info", "Autoresearch: the daemon restarted with the new settings.");
  }

  deactivating = async () => {
    await locks.release("VS Code is closing");
    dump.flush();
    await daemon.stop();
  };

  void daemon.start(true);
}

function describe(state: LoopState | undefined): string | undefined {
  if (!state || (state.mode ?? "none") === "none") return undefined;
  if (state.mode === "observer") return "observing";
  const current = state.current !== null && state.current !== undefined ? ` #${state.current}` : "";
  return `${phaseLabel(state.phase)}${ACTIVE_PHASES.includes(state.phase) ? current : ""}`;
}

export async function deactivate(): Promise<void> {
  await deactivating?.();
}
