// The seam for the end-to-end suite's state dump. The dump itself (tests/e2e/hook/) is not in the
// .vsix: the suite builds it to out/e2e/hook.js and names it in AUTORESEARCH_E2E_HOOK; only then
// is it loaded, and handed this probe over the live objects. Without the variable: nothing.
import { createRequire } from "node:module";
import type { Row } from "./format";

type Subscribe<T = unknown> = (listener: (value: T) => void) => { dispose(): void };

/** What the extension shows, read on demand, and the events after which it may have changed. */
export interface Probe {
  daemon(): string;
  root(): string;
  loop(): { phase: string; mode: string };
  tree(): Promise<{ session: Row | undefined; items: Row[] }>;
  statusBar(): { gpu: string; gpuTooltip: string; gpuWarning: boolean; loop: string };
  locks(): { locked: string[]; offLimits: string[]; readonlyInclude: Record<string, boolean> | null };
  chart(): { open: boolean; points: number; reduced: boolean };
  changed: Subscribe[];
  onMessage: Subscribe<{ severity: "info" | "warning" | "error"; text: string }>;
  onNotification: Subscribe<string>;
}

export interface TestHook {
  /** Write what is pending now (the extension deactivates). */
  flush(): void;
  dispose(): void;
}

export function loadTestHook(probe: Probe, file = process.env.AUTORESEARCH_E2E_HOOK): TestHook | undefined {
  if (!file) return undefined;
  const hook = createRequire(__filename)(file) as { attach(probe: Probe): TestHook };
  return hook.attach(probe);
}
