// Which of the loop's notices the editor shows (pure: unit-tested without VS Code).
import type { LoopNotice } from "./protocol";

/**
 * A stop by itself and a streak of crashes always; a new best only when asked for
 * (autoresearch.notify.newBest). A failure is said already, as an error, when the state turns
 * "failed" (format.ts phaseMessage).
 */
export function noticeWanted(notice: LoopNotice, newBest: boolean): boolean {
  if (notice.kind === "failed") return false;
  return notice.kind !== "new_best" || newBest;
}
