// Restart the daemon when the settings it was started with change (debounced), or the Python
// extension's interpreter does (when autoresearch.python is not set); never stop or pause a
// running loop without asking.
import * as vscode from "vscode";
import type { Notify } from "../notify";
import { restartCost } from "../format";
import type { Session } from "../session";
import type { Daemon } from "./daemon";
import { onInterpreterChange } from "./python";

// Settings the daemon is started with; others (restartOnCrash, statusBar, ...) need no restart.
const RESTART_SETTINGS = ["autoresearch.python", "autoresearch.daemon.args", "autoresearch.daemon.env"];

export async function restartOnSettings(
  daemon: Daemon,
  session: Session,
  log: vscode.LogOutputChannel,
  notify: Notify,
): Promise<vscode.Disposable[]> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void restartUnlessLooping(), 500);
  };

  /** A restart that would stop or pause the loop is never done without asking. */
  async function restartUnlessLooping(): Promise<void> {
    // A detached loop runs on through a restart; only what it would cost is asked about.
    const cost = restartCost(session.state);
    if (cost) {
      const now = "Restart Now";
      const answer = await vscode.window.showWarningMessage(
        `Autoresearch: the daemon settings changed. Restart the daemon now? ${cost}; ` +
          "otherwise the new settings apply at the next restart (Autoresearch: Restart Daemon).",
        now,
        "Later",
      );
      if (answer !== now) return;
    }
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: "Autoresearch: restarting the daemon" },
      () => daemon.restart(),
    );
    // A failed start told the user why already (the start is interactive).
    if (daemon.status === "ready") notify("info", "Autoresearch: the daemon restarted with the new settings.");
  }

  return [
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (RESTART_SETTINGS.some((key) => event.affectsConfiguration(key))) {
        log.info("The daemon's settings changed: restarting it");
        schedule();
      }
    }),
    await onInterpreterChange(() => {
      if (!vscode.workspace.getConfiguration("autoresearch").get<string>("python")) schedule();
    }),
    { dispose: () => clearTimeout(timer) },
  ];
}
