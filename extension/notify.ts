// Messages to the user: one function for the commands and the loop's phase changes, and an event
// for each message shown (the e2e hook reads the last one).
import * as vscode from "vscode";
import type { Daemon } from "./daemon/daemon";
import { phaseMessage } from "./format";
import { noticeWanted } from "./noticeRule";
import { Method } from "./protocol";
import type { Session } from "./session";

export type Severity = "info" | "warning" | "error";
export type Notify = (severity: Severity, text: string) => void;

export class Notifier implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<{ severity: Severity; text: string }>();
  readonly onDidNotify = this.emitter.event;

  readonly notify: Notify = (severity, text) => void this.show(severity, text);

  /** Show one message (and tell the hook); resolves with the action picked, if any. */
  private show(severity: Severity, text: string, ...actions: string[]): Thenable<string | undefined> {
    this.emitter.fire({ severity, text });
    const show =
      severity === "error"
        ? vscode.window.showErrorMessage
        : severity === "warning"
          ? vscode.window.showWarningMessage
          : vscode.window.showInformationMessage;
    return show(text, ...actions);
  }

  /** Say when the loop stopped or failed (phaseMessage words it). */
  followLoop(session: Session): vscode.Disposable {
    return session.onDidChangeState(({ state, previous }) => {
      const message = state && phaseMessage(previous, state);
      if (message) this.notify(message.severity, message.text);
    });
  }

  /**
   * The loop's notices: it stopped by itself (and why), 3 crashes in a row, a new best (only with
   * autoresearch.notify.newBest). Each offers to open the experiment it names.
   */
  followNotices(daemon: Daemon, session: Session, open: (tag: string, number: number) => Promise<void>): vscode.Disposable {
    return daemon.onNotification(Method.notice, (notice) => {
      if (!session.isMine(notice.root) || !noticeWanted(notice, newBestWanted())) return;
      const text = `Autoresearch: ${notice.text}`;
      const severity: Severity = notice.kind === "crashes" ? "warning" : "info";
      const number = notice.number;
      const action = number !== null && number !== undefined ? `Open Experiment #${number}` : undefined;
      void this.show(severity, text, ...(action ? [action] : [])).then((picked) => {
        if (picked && action && number !== null && number !== undefined) void open(notice.tag ?? "", number);
      });
    });
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

function newBestWanted(): boolean {
  return vscode.workspace.getConfiguration("autoresearch").get<boolean>("notify.newBest", false);
}
