// The daemon's lifecycle: `<python> -m autoresearch serve` over stdio with vscode-languageclient,
// typed requests and notifications (protocol.ts), restart on crash with back-off, Restart Daemon.
import * as vscode from "vscode";
import {
  CloseAction,
  ErrorAction,
  LanguageClient,
  RevealOutputChannelOn,
  State,
  type ClientCapabilities,
  type FeatureState,
  type LanguageClientOptions,
  type ServerOptions,
  type StaticFeature,
} from "vscode-languageclient/node";
import {
  type DaemonApi,
  type NotificationMethod,
  type Notifications,
  type ParamsOf,
  type RequestMethod,
  type ResultOf,
  NOTIFICATION_METHODS,
  Method,
  type EditorEditParams,
} from "../protocol";
import { editorEdit } from "../editorModel";

export type DaemonStatus = "stopped" | "starting" | "ready" | "crashed" | "failed";

const MAX_BACKOFF_MS = 30_000;
const STABLE_MS = 60_000;
const READY_TIMEOUT_MS = 60_000;

type Handler<M extends NotificationMethod> = (params: Notifications[M]) => void;

/** A request refused because there is no daemon; `told`: the user already saw why. */
export class DaemonUnavailable extends Error {
  constructor(
    message: string,
    readonly told: boolean,
  ) {
    super(message);
  }
}

/**
 * Declares no `window.workDoneProgress`: the daemon then sends no `$/progress` for the running
 * experiment, which VS Code would show in the status bar next to the loop item saying the same.
 */
class NoWorkDoneProgress implements StaticFeature {
  fillClientCapabilities(capabilities: ClientCapabilities): void {
    if (capabilities.window) capabilities.window.workDoneProgress = false;
  }
  initialize(): void {}
  getState(): FeatureState {
    return { kind: "static" };
  }
  clear(): void {}
}

export class Daemon implements DaemonApi, vscode.Disposable {
  private client: LanguageClient | undefined;
  private starting: Promise<void> | undefined;
  private stopping = false;
  private disposed = false;
  private failures = 0;
  /** Bumped by restart(): a start still finding its interpreter (maybe asking the user) is then stale. */
  private generation = 0;
  private finding = false;
  /** The last start was interactive: when it failed, the user was told why. */
  private toldWhy = false;
  private restartTimer: ReturnType<typeof setTimeout> | undefined;
  private stableTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly handlers = new Map<NotificationMethod, Set<(params: never) => void>>();
  private readonly statusEmitter = new vscode.EventEmitter<DaemonStatus>();
  readonly onDidChangeStatus = this.statusEmitter.event;
  private readonly notifyEmitter = new vscode.EventEmitter<NotificationMethod>();
  /** Fires the method name of every notification, after its handlers ran. */
  readonly onDidNotify = this.notifyEmitter.event;
  status: DaemonStatus = "stopped";
  private readonly findingEmitter = new vscode.EventEmitter<boolean>();

  /** A start is finding its interpreter: maybe asking the user or installing (no time limit). */
  private get findingPython(): boolean {
    return this.finding;
  }

  private set findingPython(value: boolean) {
    if (this.finding === value) return;
    this.finding = value;
    this.findingEmitter.fire(value);
  }

  constructor(
    private readonly log: vscode.LogOutputChannel,
    /** An interpreter that imports autoresearch; interactive: the user may be asked. */
    private readonly python: (interactive: boolean) => Promise<string | undefined>,
    private readonly folder: () => vscode.WorkspaceFolder | undefined,
  ) {}

  private setStatus(status: DaemonStatus): void {
    if (this.status === status) return;
    this.status = status;
    this.log.info(`Daemon ${status}`);
    this.statusEmitter.fire(status);
  }

  onNotification<M extends NotificationMethod>(method: M, handler: Handler<M>): vscode.Disposable {
    let set = this.handlers.get(method);
    if (!set) this.handlers.set(method, (set = new Set()));
    const stored = handler as (params: never) => void;
    set.add(stored);
    return new vscode.Disposable(() => set!.delete(stored));
  }

  private dispatch(method: NotificationMethod, params: unknown): void {
    for (const handler of this.handlers.get(method) ?? []) {
      try {
        (handler as (p: unknown) => void)(params);
      } catch (error) {
        this.log.error(`Handling ${method} failed: ${String(error)}`);
      }
    }
    this.notifyEmitter.fire(method);
  }

  /** Start the daemon unless it runs or is starting. */
  start(interactive = true): Promise<void> {
    if (this.client && this.status === "ready") return Promise.resolve();
    if (!this.starting) {
      const starting: Promise<void> = this.doStart(interactive).finally(() => {
        if (this.starting === starting) this.starting = undefined;
      });
      this.starting = starting;
    }
    return this.starting;
  }

  private async doStart(interactive: boolean): Promise<void> {
    if (this.disposed) return;
    this.setStatus("starting");
    const generation = this.generation;
    const folder = this.folder();
    let python: string | undefined;
    this.findingPython = true;
    try {
      python = await this.python(interactive);
    } finally {
      if (generation === this.generation) this.findingPython = false;
    }
    // Restarted meanwhile (e.g. autoresearch.python set while the install offer was unanswered).
    if (generation !== this.generation || this.disposed) return;
    if (!python) {
      this.toldWhy = interactive;
      this.setStatus("failed");
      return;
    }
    const config = vscode.workspace.getConfiguration("autoresearch", folder?.uri);
    const args = config.get<string[]>("daemon.args", []);
    const env = config.get<Record<string, string>>("daemon.env", {});
    const serverOptions: ServerOptions = {
      command: python,
      args: ["-m", "autoresearch", "serve", ...args],
      // No `transport`: plain stdio, without the `--stdio` flag TransportKind.stdio would append.
      options: { cwd: folder?.uri.fsPath, env: { ...process.env, PYTHONUNBUFFERED: "1", ...env } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [],
      outputChannel: this.log,
      revealOutputChannelOn: RevealOutputChannelOn.Never,
      workspaceFolder: folder,
      initializationOptions: { extensionVersion: vscode.extensions.getExtension("autoresearch.autoresearch")?.packageJSON?.version },
      errorHandler: {
        error: (error, _message, count) => {
          this.log.error(`Daemon connection error (${count ?? 1}): ${error.message}`);
          return { action: (count ?? 1) <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown, handled: true };
        },
        closed: () => {
          this.onClosed();
          return { action: CloseAction.DoNotRestart, handled: true };
        },
      },
    };
    const client = new LanguageClient("autoresearch", "Autoresearch Daemon", serverOptions, clientOptions);
    client.registerFeature(new NoWorkDoneProgress());
    for (const method of NOTIFICATION_METHODS) {
      client.onNotification(method, (params: unknown) => this.dispatch(method, params));
    }
    // The editor agent's edit step: the daemon asks, the editor's chat model answers.
    client.onRequest(Method.editorEdit, (params: EditorEditParams, token: vscode.CancellationToken) =>
      editorEdit(params, token),
    );
    this.client = client;
    this.log.info(`Starting ${python} -m autoresearch serve ${args.join(" ")}`.trim());
    try {
      await client.start();
    } catch (error) {
      this.log.error(`Daemon failed to start: ${String(error)}`);
      const handled = this.status === "crashed"; // onClosed already scheduled the restart
      if (this.client === client) this.client = undefined;
      void client.dispose().catch(() => undefined);
      this.setStatus("crashed");
      if (!handled) this.scheduleRestart();
      return;
    }
    if (this.client !== client) {
      await client.stop(3000).catch(() => undefined); // superseded while starting
      return;
    }
    if (client.state !== State.Running) return;
    this.setStatus("ready");
    clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(() => (this.failures = 0), STABLE_MS);
  }

  private onClosed(): void {
    if (this.stopping || this.disposed) return;
    this.log.error("The daemon exited unexpectedly.");
    clearTimeout(this.stableTimer);
    // The old client stops by itself (DoNotRestart); disposing it here would try a shutdown
    // request over the closed connection.
    this.client = undefined;
    this.setStatus("crashed");
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    const enabled = vscode.workspace
      .getConfiguration("autoresearch", this.folder()?.uri)
      .get<boolean>("daemon.restartOnCrash", true);
    if (!enabled || this.disposed) return;
    const delay = Math.min(MAX_BACKOFF_MS, 1000 * 2 ** this.failures);
    this.failures += 1;
    this.log.info(`Restarting the daemon in ${delay / 1000} s (attempt ${this.failures})`);
    clearTimeout(this.restartTimer);
    this.restartTimer = setTimeout(() => void this.start(false), delay);
  }

  async stop(): Promise<void> {
    clearTimeout(this.restartTimer);
    clearTimeout(this.stableTimer);
    const client = this.client;
    this.client = undefined;
    if (client) {
      this.stopping = true;
      try {
        if (client.state !== State.Stopped) await client.stop(3000);
      } catch (error) {
        this.log.warn(`Stopping the daemon: ${String(error)}`);
      } finally {
        this.stopping = false;
      }
    }
    this.setStatus("stopped");
  }

  /** The Restart Daemon command, a settings change or an interpreter change. */
  async restart(): Promise<void> {
    this.failures = 0;
    this.generation += 1;
    // A start still finding its interpreter has spawned nothing: it may wait on a question to the
    // user for ever (the install offer), so it is left behind rather than waited for.
    if (this.findingPython) {
      this.findingPython = false;
      this.starting = undefined;
    }
    // A start in progress must finish first: stopping a client that is still starting throws,
    // and the daemon it spawns would be left running beside the new one.
    await this.starting?.catch(() => undefined);
    await this.stop();
    await this.start(true);
  }

  /**
   * The running daemon, starting it when there is none. No time limit while its start waits for
   * the user (the install offer) or for the install itself: the caller goes on when it is ready.
   */
  private ready(): Promise<LanguageClient> {
    if (this.client && this.status === "ready") return Promise.resolve(this.client);
    if (this.status === "stopped" || this.status === "failed") void this.start(true);
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = () => {
        clearTimeout(timer);
        statusListener.dispose();
        findingListener.dispose();
      };
      const arm = () => {
        clearTimeout(timer);
        if (this.findingPython) return;
        timer = setTimeout(() => {
          done();
          reject(new DaemonUnavailable("The Autoresearch daemon is not running (see the Autoresearch log).", false));
        }, READY_TIMEOUT_MS);
      };
      const statusListener = this.onDidChangeStatus((status) => {
        if (status === "ready" && this.client) {
          done();
          resolve(this.client);
        } else if (status === "failed") {
          done();
          reject(new DaemonUnavailable("The Autoresearch daemon could not start (see the Autoresearch log).", this.toldWhy));
        }
      });
      const findingListener = this.findingEmitter.event(arm);
      arm();
    });
  }

  /** Resolves when the daemon is ready (started, maybe installed, if need be); rejects when it cannot start. */
  async whenReady(): Promise<void> {
    await this.ready();
  }

  async request<M extends RequestMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
    const client = await this.ready();
    return client.sendRequest<ResultOf<M>>(method, params);
  }

  dispose(): void {
    this.disposed = true;
    void this.stop();
    this.statusEmitter.dispose();
    this.notifyEmitter.dispose();
    this.findingEmitter.dispose();
  }
}
