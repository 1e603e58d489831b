// activate(): wiring only. It makes the parts and connects them; each part follows the events it
// needs. The session (session.ts) holds the loop's state once; the tree's model follows it, and
// the tree and the chart follow the model; the status bar and the locks follow the session and
// the daemon.
import * as vscode from "vscode";
import { ChartPanel } from "./chart/chart";
import { CurveFeed } from "./chart/curveFeed";
import { registerCommands } from "./commands";
import { Daemon } from "./daemon/daemon";
import { usablePython, type Stage } from "./daemon/python";
import { restartOnSettings } from "./daemon/restart";
import { RevisionFileSystem, REV_SCHEME } from "./diffs/diffs";
import { LOG_SCHEME, RunLog } from "./diffs/runLog";
import { followLocks } from "./locks/follow";
import { Locks } from "./locks/locks";
import { Notifier } from "./notify";
import { Method } from "./protocol";
import { pickFolder, Session } from "./session";
import { StatusBar } from "./statusBar/statusBar";
import { loadTestHook, type TestHook } from "./testHook";
import { createResultsView, ResultsTree } from "./tree/resultsTree";
import { ResultsModel } from "./tree/treeModel";

let deactivating: (() => Promise<void>) | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const log = vscode.window.createOutputChannel("Autoresearch", { log: true });
  const stage = new vscode.EventEmitter<Stage>();
  const pythonDeps = {
    log,
    extensionPath: context.extensionPath,
    storagePath: context.globalStorageUri.fsPath,
    onStage: (s: Stage) => stage.fire(s),
  };
  const daemon = new Daemon(log, (interactive) => usablePython(pickFolder(), pythonDeps, interactive), pickFolder);
  const session = new Session(daemon, log);
  const model = new ResultsModel(
    (tag, offset, limit, newestFirst) =>
      daemon.request(Method.experiments, { root: session.requireRoot(), tag, offset, limit, newest_first: newestFirst }),
    session,
  );
  const tree = new ResultsTree(model, daemon, session, log);
  const statusBar = new StatusBar();
  const locks = new Locks(context.workspaceState, pickFolder, log);
  const runLog = new RunLog(daemon, () => session.requireRoot());
  const notifier = new Notifier();
  const notify = notifier.notify;
  const openExperiment = async (tag: string, number: number) => {
    await vscode.commands.executeCommand("autoresearch.openExperimentChanges", { kind: "experiment", tag, number });
  };
  const chart = new ChartPanel(context.extensionUri, model, openExperiment, log, {
    series: (tag, buckets) => daemon.request(Method.chartSeries, { root: session.requireRoot(), tag, buckets }),
    // By position: a number is its position unless an unreadable line was left out before it.
    experiment: async (tag, number) =>
      (await daemon.request(Method.experiments, { root: session.requireRoot(), tag, offset: number, limit: 1, newest_first: false })).items[0],
  });

  context.subscriptions.push(
    log,
    stage,
    daemon,
    session,
    // The model follows the session (the loop's state is held there, once).
    session.onDidChangeState(({ previous }) => model.stateChanged(previous)),
    session.onDidRecord((event) => model.record(event)),
    session.onDidReset(() => model.reset()),
    // A session in the workspace (it activated us): its newest page is loaded before the view is
    // opened, so the first click shows rows at once (#21 item 5). After the model's own listener.
    preloadNewestPage(session, model, log, () => chart.prefetch()),
    tree,
    ...createResultsView(tree, session, daemon, stage.event),
    chart,
    new CurveFeed(daemon, session, chart, log),
    statusBar,
    ...statusBar.follow(daemon, session, log),
    stage.event((s) => statusBar.setStage(s)),
    locks,
    ...followLocks(locks, daemon, session),
    runLog,
    daemon.onNotification(Method.logAppended, (event) => {
      if (session.isMine(event.root)) runLog.append(event);
    }),
    notifier,
    notifier.followLoop(session),
    notifier.followNotices(daemon, session, openExperiment),
    vscode.workspace.registerFileSystemProvider(REV_SCHEME, new RevisionFileSystem(daemon), {
      isReadonly: true,
      isCaseSensitive: true,
    }),
    vscode.window.registerFileDecorationProvider(locks),
    vscode.workspace.registerTextDocumentContentProvider(LOG_SCHEME, runLog),
    ...registerCommands({ daemon, session, model, chart, runLog, statusBar, log, notify }),
    ...(await restartOnSettings(daemon, session, log, notify)),
  );

  // A previous window that crashed with files locked: unlock them before anything else.
  await locks.release("left locked by a previous session");

  const hook: TestHook | undefined = loadTestHook({
    daemon: () => daemon.status,
    root: () => session.root ?? "",
    loop: () => ({ phase: session.state?.phase ?? "idle", mode: session.state?.mode ?? "none" }),
    tree: () => model.currentRows(),
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
    chart: () => ({ open: chart.open, points: chart.points, reduced: chart.reduced }),
    changed: [
      (f) => tree.onDidRefresh(f),
      (f) => session.onDidChangeState(f),
      (f) => statusBar.onDidChange(f),
      (f) => locks.onDidChange(f),
      (f) => chart.onDidChange(f),
      (f) => daemon.onDidChangeStatus(f),
    ],
    onMessage: (f) => notifier.onDidNotify(f),
    onNotification: (f) => daemon.onDidNotify(f),
  });
  if (hook) context.subscriptions.push(hook);

  deactivating = async () => {
    await locks.release("VS Code is closing");
    hook?.flush();
    await daemon.stop();
  };

  void daemon.start(true);
}

function preloadNewestPage(session: Session, model: ResultsModel, log: vscode.LogOutputChannel, then: () => void): vscode.Disposable {
  const once = session.onDidChangeState(() => {
    const tag = model.currentTag;
    if (tag === undefined) return;
    once.dispose();
    // Then the chart's data for a large session (after the page: not to slow the tree's rows).
    model
      .sessionChildren(tag)
      .then(then)
      .catch((error: unknown) => log.warn(`preloading ${tag}: ${String(error)}`));
  });
  return once;
}

export async function deactivate(): Promise<void> {
  await deactivating?.();
}
