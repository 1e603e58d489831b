// The results tree view: sessions -> experiments (newest first, older ones in lazy groups) ->
// changed files. Renders treeModel.ts; refreshes when the model says so (notifications), never
// by polling. createResultsView() makes the view and keeps its description and message current.
import * as path from "node:path";
import * as vscode from "vscode";
import type { Daemon } from "../daemon/daemon";
import type { Stage } from "../daemon/python";
import { phaseLabel, type Row } from "../format";
import { ACTIVE_PHASES, Method, type ChangesResult, type DaemonApi, type FileChange, type LoopState } from "../protocol";
import type { Session } from "../session";
import { busyText } from "../workers";
import type { Node, ResultsModel } from "./treeModel";

const REFRESH_MS = 100;

export class ResultsTree implements vscode.TreeDataProvider<Node>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<Node | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly refreshed = new vscode.EventEmitter<void>();
  /** Fires after a refresh was handed to the view (for the e2e dump). */
  readonly onDidRefresh = this.refreshed.event;

  private readonly changesCache = new Map<string, ChangesResult>();

  constructor(
    private readonly model: ResultsModel,
    private readonly daemon: DaemonApi,
    private readonly session: Session,
    private readonly log: vscode.LogOutputChannel,
  ) {
    model.onChange(() => {
      session.setHasSessions(model.hasSessions());
      this.refresh();
    });
  }

  /** Coalesces bursts of notifications into one refresh. */
  refresh(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.emitter.fire(undefined);
      this.refreshed.fire();
    }, REFRESH_MS);
  }

  getTreeItem(node: Node): vscode.TreeItem {
    switch (node.kind) {
      case "session": {
        const item = fromRow(this.model.sessionRow(node.tag), vscode.TreeItemCollapsibleState.Collapsed);
        if (node.tag === this.model.currentTag) item.collapsibleState = vscode.TreeItemCollapsibleState.Expanded;
        return item;
      }
      case "running": {
        const row = this.model.runningRow(node);
        return row ? fromRow(row, vscode.TreeItemCollapsibleState.None) : new vscode.TreeItem("…");
      }
      case "experiment": {
        const row = this.model.experimentRow(node.tag, node.number);
        if (!row) return new vscode.TreeItem(`#${node.number}`);
        return fromRow(row, vscode.TreeItemCollapsibleState.Collapsed);
      }
      case "group":
        return fromRow(this.model.groupRow(node.tag, node.start, node.end), vscode.TreeItemCollapsibleState.Collapsed);
      case "file":
        return this.fileItem(node);
      case "message":
        return fromRow(this.model.messageRow(node.id, node.text), vscode.TreeItemCollapsibleState.None);
    }
  }

  private fileItem(node: Extract<Node, { kind: "file" }>): vscode.TreeItem {
    const change = node.change;
    const root = this.session.root ?? "";
    const item = new vscode.TreeItem(
      vscode.Uri.file(path.join(root, change.path)),
      vscode.TreeItemCollapsibleState.None,
    );
    item.id = `file:${node.tag}:${node.number}:${change.path}`;
    item.label = change.path;
    item.description = fileDescription(change);
    item.tooltip = `${change.status} ${change.old_path ? `${change.old_path} → ` : ""}${change.path}`;
    item.contextValue = "autoresearch.file";
    item.command = {
      command: "autoresearch.openFileDiff",
      title: "Open Diff",
      arguments: [node],
    };
    return item;
  }

  async getChildren(node?: Node): Promise<Node[]> {
    try {
      if (!node) {
        const roots = this.model.roots();
        this.session.setHasSessions(roots.length > 0);
        return roots;
      }
      switch (node.kind) {
        case "session":
          return await this.model.sessionChildren(node.tag);
        case "group":
          return await this.model.groupChildren(node.tag, node.start, node.end);
        case "experiment":
          return await this.files(node.tag, node.number);
        default:
          return [];
      }
    } catch (error) {
      this.log.warn(`results tree: ${String(error)}`);
      return [{ kind: "message", id: `error:${node ? JSON.stringify(node) : "root"}`, text: messageOf(error) }];
    }
  }

  private async files(tag: string, number: number): Promise<Node[]> {
    const experiment = this.model.experiment(tag, number);
    const root = this.session.requireRoot();
    // A commit's files never change: ask the daemon once per commit, not at every refresh.
    const key = experiment?.commit ? `${root}\0${experiment.commit}` : undefined;
    let changes = key ? this.changesCache.get(key) : undefined;
    if (!changes) {
      changes = await this.daemon.request(Method.changes, {
        root,
        number,
        tag: tag || null,
        commit: experiment?.commit || null,
      });
      if (key) this.changesCache.set(key, changes);
    }
    if (changes.files.length === 0) {
      return [{ kind: "message", id: `nofiles:${tag}:${number}`, text: "No changed files" }];
    }
    return changes.files.map((change) => ({
      kind: "file",
      tag,
      number,
      commit: changes.commit,
      parent: changes.parent,
      change,
    }));
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.emitter.dispose();
    this.refreshed.dispose();
  }
}

export function fileDescription(change: FileChange): string {
  const stats = change.binary ? "binary" : `+${change.additions} −${change.deletions}`;
  return `${stats} · ${change.status}`;
}

function fromRow(row: Row, collapsible: vscode.TreeItemCollapsibleState): vscode.TreeItem {
  const item = new vscode.TreeItem(row.label, collapsible);
  item.id = row.id;
  item.description = row.description;
  item.tooltip = new vscode.MarkdownString(row.tooltip);
  item.iconPath = new vscode.ThemeIcon(row.icon, row.color ? new vscode.ThemeColor(row.color) : undefined);
  item.contextValue = row.contextValue;
  return item;
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The Experiments view over `tree`: its description says the loop's phase, its message what keeps
 * the daemon away (the install offer, an install, a restart after a crash).
 */
export function createResultsView(
  tree: ResultsTree,
  session: Session,
  daemon: Daemon,
  onStage: vscode.Event<Stage>,
): vscode.Disposable[] {
  const view = vscode.window.createTreeView("autoresearch.experiments", { treeDataProvider: tree, showCollapseAll: true });
  return [
    view,
    onStage((stage) => {
      view.message =
        stage === "asking"
          ? "The Autoresearch daemon is not installed: answer the notification (Install, or choose an interpreter)."
          : stage === "installing"
            ? "Installing the Autoresearch daemon into a private environment…"
            : undefined;
    }),
    session.onDidChangeState(({ state }) => {
      view.description = describe(state);
    }),
    daemon.onDidChangeStatus((status) => {
      if (status === "crashed") view.message = "The Autoresearch daemon exited; restarting…";
      else if (status === "ready" || status === "failed") view.message = undefined;
    }),
  ];
}

function describe(state: LoopState | undefined): string | undefined {
  if (!state || (state.mode ?? "none") === "none") return undefined;
  if (state.mode === "observer") return "observing";
  // A parallel loop: how busy its workers are, not the lowest number in flight.
  if ((state.workers ?? []).length > 0 && ACTIVE_PHASES.includes(state.phase)) {
    return `${phaseLabel(state.phase)} · ${busyText(state.workers ?? [])}`;
  }
  const current = state.current !== null && state.current !== undefined ? ` #${state.current}` : "";
  return `${phaseLabel(state.phase)}${ACTIVE_PHASES.includes(state.phase) ? current : ""}`;
}
