// Messages to the user: one function for the commands and the loop's phase changes, and an event
// for each message shown (the e2e hook reads the last one).
import * as vscode from "vscode";
import { phaseMessage } from "./format";
import type { Session } from "./session";

export type Severity = "info" | "warning" | "error";
export type Notify = (severity: Severity, text: string) => void;

export class Notifier implements vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<{ severity: Severity; text: string }>();
  readonly onDidNotify = this.emitter.event;

  readonly notify: Notify = (severity, text) => {
    this.emitter.fire({ severity, text });
    const show =
      severity === "error"
        ? vscode.window.showErrorMessage
        : severity === "warning"
          ? vscode.window.showWarningMessage
          : vscode.window.showInformationMessage;
    void show(text);
  };

  /** Say when the loop stopped or failed (phaseMessage words it). */
  followLoop(session: Session): vscode.Disposable {
    return session.onDidChangeState(({ state, previous }) => {
      const message = state && phaseMessage(previous, state);
      if (message) this.notify(message.severity, message.text);
    });
  }

  dispose(): void {
    this.emitter.dispose();
  }
}
