// For the end-to-end suite: with AUTORESEARCH_E2E_STATE=/path/file.json in the extension host's
// environment (and the hook loaded: hook.ts), a JSON dump of what the extension shows, rewritten (atomically) after each change.
// Off (every call a no-op) without the variable. No vscode import.
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export interface DumpRow {
  label: string;
  description: string;
  icon: string;
  contextValue: string;
}

export interface E2EState {
  daemon: string;
  root: string;
  phase: string;
  mode: string;
  tree: { session: DumpRow | null; items: DumpRow[] };
  statusBar: { gpu: string; gpuTooltip: string; gpuWarning: boolean; loop: string };
  locks: { locked: string[]; offLimits: string[]; readonlyInclude: Record<string, boolean> | null };
  chart: { open: boolean; points: number; reduced?: boolean };
  lastNotification: { method: string; at: string } | null;
  lastMessage: { severity: "info" | "warning" | "error"; text: string; at: string } | null;
  updated: string;
  writes: number;
  /** The extension host's pid: a reloaded window's dump is told from the old window's last one. */
  host: number;
}

export function emptyState(): E2EState {
  return {
    daemon: "stopped",
    root: "",
    phase: "idle",
    mode: "none",
    tree: { session: null, items: [] },
    statusBar: { gpu: "", gpuTooltip: "", gpuWarning: false, loop: "" },
    locks: { locked: [], offLimits: [], readonlyInclude: null },
    chart: { open: false, points: 0 },
    lastNotification: null,
    lastMessage: null,
    updated: "",
    writes: 0,
    host: process.pid,
  };
}

export class StateDump {
  private readonly state = emptyState();
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    readonly path: string | undefined = process.env.AUTORESEARCH_E2E_STATE,
    private readonly delayMs = 30,
  ) {}

  get enabled(): boolean {
    return !!this.path;
  }

  update(change: Partial<E2EState>): void {
    if (!this.path) return;
    Object.assign(this.state, change);
    this.timer ??= setTimeout(() => this.flush(), this.delayMs);
  }

  /** Write now (also called when the extension deactivates). */
  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.path) return;
    this.state.updated = new Date().toISOString();
    this.state.writes += 1;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.state, null, 1));
    renameSync(tmp, this.path);
  }

  snapshot(): E2EState {
    return structuredClone(this.state);
  }
}

/** Where each part of the dump comes from (functions over the live objects). */
export interface DumpSources {
  daemon(): string;
  root(): string;
  loop(): { phase: string; mode: string };
  tree(): Promise<E2EState["tree"]>;
  statusBar(): E2EState["statusBar"];
  locks(): E2EState["locks"];
  chart(): E2EState["chart"];
}

type Subscribe = (listener: () => void) => { dispose(): void };

/** Re-collect the dump whenever one of the events fires (coalesced), while enabled. */
export function startDump(dump: StateDump, sources: DumpSources, events: Subscribe[]): { dispose(): void } {
  if (!dump.enabled) return { dispose() {} };
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let again = false;
  const collect = async () => {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      let tree: E2EState["tree"] = { session: null, items: [] };
      try {
        tree = await sources.tree();
      } catch {
        // the daemon is away: an empty tree is what the view shows too
      }
      dump.update({
        daemon: sources.daemon(),
        root: sources.root(),
        ...sources.loop(),
        tree,
        statusBar: sources.statusBar(),
        locks: sources.locks(),
        chart: sources.chart(),
      });
    } finally {
      running = false;
      if (again) {
        again = false;
        schedule();
      }
    }
  };
  const schedule = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      void collect();
    }, 50);
  };
  const subscriptions = events.map((subscribe) => subscribe(schedule));
  schedule();
  return {
    dispose() {
      clearTimeout(timer);
      for (const s of subscriptions) s.dispose();
    },
  };
}

export function toDumpRow(row: { label: string; description: string; icon: string; contextValue: string }): DumpRow {
  return { label: row.label, description: row.description, icon: row.icon, contextValue: row.contextValue };
}
