// When the files in scope are locked and unlocked: as the daemon's locksChanged says, and never
// left locked once our loop ended or the daemon went away. (A loop observed in another process
// is left to its own locksChanged notifications.)
import type * as vscode from "vscode";
import type { Daemon } from "../daemon/daemon";
import { ACTIVE_PHASES, Method } from "../protocol";
import type { Session } from "../session";
import type { Locks } from "./locks";

export function followLocks(locks: Locks, daemon: Daemon, session: Session): vscode.Disposable[] {
  return [
    daemon.onNotification(Method.locksChanged, (event) => {
      if (session.isMine(event.root)) void locks.apply(event);
    }),
    session.onDidChangeState(({ state }) => {
      if (state && state.mode !== "observer" && !ACTIVE_PHASES.includes(state.phase)) {
        void locks.release(`loop ${state.phase}`);
      }
    }),
    daemon.onDidChangeStatus((status) => {
      if (status === "crashed") void locks.release("the daemon exited");
    }),
  ];
}
