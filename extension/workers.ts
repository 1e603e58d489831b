// What a parallel loop's workers are, in words (LoopState.workers, Experiment.worker/gpus): where
// an experiment runs ("worker 2 · GPU 1"), how busy the machine is ("4/4 GPUs busy"), which worker
// uses which GPU. Pure, and below format.ts (which builds the rows and status texts from these).
// With no workers (the one-at-a-time loop) every function here says nothing.
import type { LoopState, WorkerState } from "./protocol";

/** "GPU 1", "GPUs 0,1", or "" for a CPU slot. */
export function gpusText(gpus: readonly number[] | undefined): string {
  if (!gpus || gpus.length === 0) return "";
  return `${gpus.length > 1 ? "GPUs" : "GPU"} ${gpus.join(",")}`;
}

/** "worker 2 · GPU 1" (or "worker 2" for a CPU slot); "" when there is no worker. */
export function workerText(worker: number | null | undefined, gpus: readonly number[] | undefined): string {
  if (worker === null || worker === undefined) return "";
  return [`worker ${worker}`, gpusText(gpus)].filter((p) => p).join(" · ");
}

function busy(w: WorkerState): boolean {
  return w.number !== null && w.number !== undefined;
}

/** The parallel loop's workers with an experiment in flight, lowest number first ([] for the
 * one-at-a-time loop, and for anything but a loop). */
export function busyWorkers(state: LoopState | undefined): WorkerState[] {
  if (!state || state.mode !== "loop") return [];
  return (state.workers ?? []).filter(busy).sort((a, b) => (a.number ?? 0) - (b.number ?? 0));
}

/** "4/4 GPUs busy", or "2/3 workers busy" when the workers are CPU slots. */
export function busyText(workers: readonly WorkerState[]): string {
  const gpus = (list: readonly WorkerState[]) => list.reduce((n, w) => n + (w.gpus?.length ?? 0), 0);
  const total = gpus(workers);
  if (total > 0) return `${gpus(workers.filter(busy))}/${total} GPUs busy`;
  return `${workers.filter(busy).length}/${workers.length} workers busy`;
}

/** Which worker uses each GPU index, as the GPU view says it: "worker 2 · #14" (idle: "worker 2"). */
export function gpuUsers(state: LoopState | undefined): Map<number, string> {
  const users = new Map<number, string>();
  if (!state || state.mode !== "loop") return users;
  for (const w of state.workers ?? []) {
    const what = busy(w) ? `worker ${w.worker} · #${w.number}` : `worker ${w.worker}`;
    for (const gpu of w.gpus ?? []) users.set(gpu, what);
  }
  return users;
}
