// The status bar: GPU utilisation / memory / temperature (from gpuStatus notifications; a warning
// background when memory is nearly full; "No GPU" when there is none), and the loop's phase and
// iteration (a parallel loop's: "4/4 GPUs busy", and which worker uses which GPU). Clicking the
// GPU item lists each GPU's details. It follows the session's state and the daemon's status and
// GPU notifications itself (follow()).
import * as vscode from "vscode";
import type { Daemon } from "../daemon/daemon";
import type { Session } from "../session";
import { formatMib, gpuLine, gpuMessage, gpuStatusText, gpuWithoutDaemonText, loopStatusText, MEMORY_WARNING } from "../format";
import { Method, type GpuStatus, type LoopState } from "../protocol";
import { gpuUsers } from "../workers";

export class StatusBar implements vscode.Disposable {
  private readonly gpuItem = vscode.window.createStatusBarItem("autoresearch.gpu", vscode.StatusBarAlignment.Left, 50);
  private readonly loopItem = vscode.window.createStatusBarItem("autoresearch.loop", vscode.StatusBarAlignment.Left, 51);
  private gpu: GpuStatus | undefined;
  /** Which worker of a parallel loop uses each GPU (empty otherwise): the GPU item says it. */
  private users = new Map<number, string>();
  private daemon = "starting";
  private stage: "asking" | "installing" | undefined;
  private readonly changed = new vscode.EventEmitter<void>();
  readonly onDidChange = this.changed.event;

  constructor() {
    this.gpuItem.name = "Autoresearch GPU";
    this.gpuItem.command = "autoresearch.showGpus";
    this.loopItem.name = "Autoresearch Loop";
    this.loopItem.command = "autoresearch.showLoopActions";
    this.setGpu(undefined);
  }

  /** Show the loop's state, the daemon's status and its GPU readings as they change. */
  follow(daemon: Daemon, session: Session, log: vscode.LogOutputChannel): vscode.Disposable[] {
    return [
      session.onDidChangeState(({ state }) => this.setLoop(state)),
      daemon.onNotification(Method.gpuStatus, (status) => this.setGpu(status)),
      daemon.onDidChangeStatus((status) => {
        this.setDaemon(status);
        if (status === "crashed" || status === "failed") this.setGpu(undefined); // stale figures
        if (status === "ready") {
          void daemon.request(Method.gpus, { root: session.root ?? null }).then(
            (gpus) => this.setGpu(gpus),
            (error: unknown) => log.warn(`gpus: ${String(error)}`),
          );
        }
      }),
      vscode.workspace.onDidChangeConfiguration((event) => {
        if (event.affectsConfiguration("autoresearch.statusBar")) this.refresh();
      }),
    ];
  }

  get gpuText(): string {
    return this.gpuItem.text;
  }

  get gpuTooltip(): string {
    return typeof this.gpuItem.tooltip === "string" ? this.gpuItem.tooltip : "";
  }

  get gpuWarning(): boolean {
    return this.gpuItem.backgroundColor !== undefined;
  }

  get loopText(): string {
    return this.loopItem.text;
  }

  /** The daemon's status: without a daemon there are no readings, and the item says why. */
  setDaemon(status: string): void {
    this.daemon = status;
    this.setGpu(this.gpu);
  }

  /** The daemon's start waits for the install offer's answer, or for the install. */
  setStage(stage: "asking" | "installing" | undefined): void {
    this.stage = stage;
    this.setGpu(this.gpu);
  }

  /** Re-render (after a settings change) without forgetting the last reading. */
  refresh(): void {
    this.setGpu(this.gpu);
  }

  setGpu(status: GpuStatus | undefined): void {
    this.gpu = status;
    const shown = vscode.workspace.getConfiguration("autoresearch").get<boolean>("statusBar.gpu", true);
    const text = status ? gpuStatusText(status, this.users) : gpuWithoutDaemonText(this.daemon, this.stage);
    this.gpuItem.text = text.text;
    this.gpuItem.tooltip = text.tooltip;
    this.gpuItem.backgroundColor = text.warning ? new vscode.ThemeColor("statusBarItem.warningBackground") : undefined;
    if (shown) this.gpuItem.show();
    else this.gpuItem.hide();
    this.changed.fire();
  }

  setLoop(state: LoopState | undefined): void {
    const users = gpuUsers(state);
    if (!sameUsers(users, this.users)) {
      this.users = users;
      this.setGpu(this.gpu);
    }
    const text = loopStatusText(state);
    if (!text) {
      this.loopItem.text = "";
      this.loopItem.hide();
    } else {
      this.loopItem.text = text.text;
      this.loopItem.tooltip = text.tooltip;
      this.loopItem.backgroundColor = text.warning ? new vscode.ThemeColor("statusBarItem.errorBackground") : undefined;
      this.loopItem.show();
    }
    this.changed.fire();
  }

  /** The quick pick behind the GPU item: one entry per GPU with its processes. */
  async showDetails(): Promise<void> {
    const status = this.gpu;
    const gpus = status?.gpus ?? [];
    if (!status) {
      const show = "Show Log";
      const answer = await vscode.window.showInformationMessage(
        `Autoresearch: ${gpuWithoutDaemonText(this.daemon, this.stage).tooltip}`,
        show,
      );
      if (answer === show) await vscode.commands.executeCommand("autoresearch.showLog");
      return;
    }
    if (!status.available || gpus.length === 0) {
      void vscode.window.showInformationMessage(`Autoresearch: ${gpuMessage(status.message)}`);
      return;
    }
    await vscode.window.showQuickPick(
      gpus.map((gpu) => {
        const full = gpu.memory_total_mib > 0 && gpu.memory_used_mib / gpu.memory_total_mib > MEMORY_WARNING;
        const processes = (gpu.processes ?? [])
          .map((p) => `${p.name || "pid"} ${p.pid}: ${formatMib(p.used_mib)}`)
          .join(", ");
        const user = this.users.get(gpu.index);
        return {
          label: `${full ? "$(warning)" : "$(pulse)"} GPU ${gpu.index}: ${gpu.name}`,
          description: gpuLine(gpu),
          detail: [user ? `Used by ${user}` : "", processes ? `Processes: ${processes}` : "No processes"]
            .filter((p) => p)
            .join("; "),
        };
      }),
      { title: "GPUs", placeHolder: status.message || `${gpus.length} GPU${gpus.length > 1 ? "s" : ""}` },
    );
  }

  dispose(): void {
    this.gpuItem.dispose();
    this.loopItem.dispose();
    this.changed.dispose();
  }
}

function sameUsers(a: ReadonlyMap<number, string>, b: ReadonlyMap<number, string>): boolean {
  return a.size === b.size && [...a].every(([gpu, user]) => b.get(gpu) === user);
}
