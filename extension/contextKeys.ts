// The context keys that `when` clauses in package.json read, computed from the loop state and the
// daemon's status. Pure: session.ts sets them with `setContext`.
import { ACTIVE_PHASES, type LoopState } from "./protocol";

export interface ContextKeys {
  /** stopped | starting | ready | crashed | failed */
  "autoresearch.daemon": string;
  /** The loop's phase (protocol Phase), "idle" without a loop. */
  "autoresearch.phase": string;
  /** none | loop | observer */
  "autoresearch.mode": string;
  /** The agent kind: sweep | manual | command | editor ("" when unknown). */
  "autoresearch.agent": string;
  /** This daemon runs a loop that has not ended (paused included). */
  "autoresearch.running": boolean;
  "autoresearch.paused": boolean;
  /** Manual mode waiting for the human's edit: Run Experiment makes sense. */
  "autoresearch.canRunExperiment": boolean;
  /** The results tree has at least one session. */
  "autoresearch.hasSessions": boolean;
}

export function contextKeys(
  state: LoopState | undefined,
  daemon: string,
  hasSessions: boolean,
): ContextKeys {
  const phase = state?.phase ?? "idle";
  const mode = daemon === "ready" ? (state?.mode ?? "none") : "none";
  const running = mode === "loop" && ACTIVE_PHASES.includes(phase);
  const agent = state?.agent ?? "";
  return {
    "autoresearch.daemon": daemon,
    "autoresearch.phase": phase,
    "autoresearch.mode": mode,
    "autoresearch.agent": agent,
    "autoresearch.running": running,
    "autoresearch.paused": running && phase === "paused",
    "autoresearch.canRunExperiment": running && agent === "manual" && phase === "editing",
    "autoresearch.hasSessions": hasSessions,
  };
}
