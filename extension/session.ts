// The session model: the loop as the extension knows it. The workspace root the daemon is asked
// about, the latest LoopState (fetched when the daemon is ready, then pushed by stateChanged),
// held here once, and the context keys. The tree's model, the chart, the status bar and the locks
// follow its events (state changed, experiment recorded, reset) instead of being fed one by one.
import { existsSync, realpathSync } from "node:fs";
import * as vscode from "vscode";
import { contextKeys, type ContextKeys } from "./contextKeys";
import type { Daemon } from "./daemon/daemon";
import { Method, type ExperimentRecorded, type LoopState } from "./protocol";

export interface StateChange {
  state: LoopState | undefined;
  previous: LoopState | undefined;
}

export class Session implements vscode.Disposable {
  state: LoopState | undefined;
  private readonly emitter = new vscode.EventEmitter<StateChange>();
  /** Fires after every state change (the new state, undefined when the daemon went away). */
  readonly onDidChangeState = this.emitter.event;
  private readonly recorded = new vscode.EventEmitter<ExperimentRecorded>();
  /** An experiment recorded in this workspace's repository. */
  readonly onDidRecord = this.recorded.event;
  private readonly resetter = new vscode.EventEmitter<void>();
  /** What was read from the daemon is stale (it restarted, the folders changed): read anew. */
  readonly onDidReset = this.resetter.event;
  private readonly disposables: vscode.Disposable[] = [];
  private keys: Partial<ContextKeys> = {};
  hasSessions = false;

  constructor(
    private readonly daemon: Daemon,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      this.emitter,
      this.recorded,
      this.resetter,
      daemon.onNotification(Method.stateChanged, (state) => {
        if (this.isMine(state.root)) this.set(state);
      }),
      daemon.onNotification(Method.experimentRecorded, (event) => {
        if (this.isMine(event.root)) this.recorded.fire(event);
      }),
      vscode.workspace.onDidChangeWorkspaceFolders(() => void this.reset()),
      daemon.onDidChangeStatus((status) => {
        if (status === "ready") void this.reset();
        else if (status === "crashed" || status === "stopped" || status === "failed") this.set(undefined);
        this.updateKeys();
      }),
    );
    this.updateKeys();
  }

  /** The workspace folder the loop runs in: the first with autoresearch.toml, else the first. */
  get folder(): vscode.WorkspaceFolder | undefined {
    return pickFolder();
  }

  get root(): string | undefined {
    return this.folder?.uri.fsPath;
  }

  /** Same folder? (The daemon may answer with the path resolved: symlinks, trailing slash.) */
  isMine(root: string): boolean {
    const mine = this.root;
    if (!mine) return false;
    if (root === mine) return true;
    return real(root) === real(mine);
  }

  requireRoot(): string {
    const root = this.root;
    if (!root) throw new Error("Open a folder (a git repository) to use Autoresearch.");
    return root;
  }

  /** Forget what was read (the followers drop theirs), then read the state anew. */
  async reset(): Promise<void> {
    this.resetter.fire();
    await this.refresh();
  }

  async refresh(): Promise<void> {
    const root = this.root;
    if (!root) return;
    try {
      this.set(await this.daemon.request(Method.state, { root }));
    } catch (error) {
      this.log.warn(`state: ${String(error)}`);
    }
  }

  set(state: LoopState | undefined): void {
    const previous = this.state;
    this.state = state;
    this.updateKeys();
    this.emitter.fire({ state, previous });
  }

  setHasSessions(value: boolean): void {
    if (this.hasSessions === value) return;
    this.hasSessions = value;
    this.updateKeys();
  }

  private updateKeys(): void {
    const next = contextKeys(this.state, this.daemon.status, this.hasSessions);
    for (const [key, value] of Object.entries(next) as [keyof ContextKeys, string | boolean][]) {
      if (this.keys[key] !== value) void vscode.commands.executeCommand("setContext", key, value);
    }
    this.keys = next;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

export function pickFolder(): vscode.WorkspaceFolder | undefined {
  const folders = vscode.workspace.workspaceFolders ?? [];
  // Workspace folders are local to the extension host here (extensionKind: workspace).
  return folders.find((f) => existsSync(vscode.Uri.joinPath(f.uri, "autoresearch.toml").fsPath)) ?? folders[0];
}

const realCache = new Map<string, string>();

function real(path: string): string {
  let resolved = realCache.get(path);
  if (resolved === undefined) {
    try {
      resolved = realpathSync(path);
    } catch {
      resolved = path.replace(/\/+$/, "");
    }
    if (realCache.size > 100) realCache.clear();
    realCache.set(path, resolved);
  }
  return resolved;
}
