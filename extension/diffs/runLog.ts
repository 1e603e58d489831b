// Run logs: the live run.log as an output channel that tails logAppended while the loop runs, and
// any recorded experiment's log as a read-only `autoresearch-log:` document.
import * as vscode from "vscode";
import { Method, type DaemonApi, type LogAppended } from "../protocol";

export const LOG_SCHEME = "autoresearch-log";

export class RunLog implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private channel: vscode.OutputChannel | undefined;
  private loading = false;
  private buffered: LogAppended[] = [];
  private lastNumber: number | null | undefined;

  constructor(
    private readonly daemon: DaemonApi,
    private readonly root: () => string,
  ) {}

  /** Open Run Log: the tail of run.log now, then live. */
  async openLive(): Promise<void> {
    const root = this.root();
    this.channel ??= vscode.window.createOutputChannel("Autoresearch Run Log", "log");
    this.channel.show(true);
    this.loading = true;
    try {
      const log = await this.daemon.request(Method.log, { root });
      this.channel.clear();
      if (log.truncated) this.channel.appendLine(`… (${log.size} bytes; showing the end of ${log.path})`);
      this.channel.append(log.text);
    } finally {
      this.loading = false;
      const buffered = this.buffered;
      this.buffered = [];
      // What arrived while loading may already be in the tail; the order still holds.
      for (const event of buffered) this.append(event);
    }
  }

  /** A logAppended notification. */
  append(event: LogAppended): void {
    if (!this.channel) return;
    if (this.loading) {
      this.buffered.push(event);
      return;
    }
    if (event.number !== this.lastNumber && event.number !== null) {
      this.channel.appendLine(`\n──── experiment #${event.number} ────`);
    }
    this.lastNumber = event.number;
    this.channel.append(event.text);
  }

  /** One recorded experiment's log, as a document. */
  async openExperiment(tag: string, number: number): Promise<void> {
    const uri = vscode.Uri.from({
      scheme: LOG_SCHEME,
      path: `/${tag || "session"}/${number}.log`,
      query: new URLSearchParams({ root: this.root(), tag, number: String(number) }).toString(),
    });
    const document = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(document, { preview: true });
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const query = new URLSearchParams(uri.query);
    const log = await this.daemon.request(Method.log, {
      root: query.get("root") ?? this.root(),
      tag: query.get("tag") || null,
      number: Number(query.get("number")),
    });
    return log.truncated ? `… (${log.size} bytes; showing the end of ${log.path})\n${log.text}` : log.text;
  }

  dispose(): void {
    this.channel?.dispose();
  }
}
