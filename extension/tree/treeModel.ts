// The results tree's model: sessions, their experiments fetched page by page, live updates from
// notifications. Pure (no vscode import): resultsTree.ts renders it and the chart follows its
// events; tests drive it with a fake fetch. It reads the loop's state where the session holds it
// (never a copy), and shows the daemon's counts and best (never its own). Never holds a TreeItem per experiment: a session shows its newest HEAD experiments, and
// older ones in groups of GROUP that load when expanded, so 10,000 experiments stay smooth.
import { COMPACT_FROM, countsText, tally } from "../counts";
import { experimentRow, formatCost, formatMetric, oneLine, runningRow, workerRow, type Reference, type Row } from "../format";
import type {
  Counts,
  Experiment,
  ExperimentRecorded,
  ExperimentsPage,
  FileChange,
  LoopState,
  SessionSummary,
  WorkerState,
} from "../protocol";
import { ACTIVE_PHASES } from "../protocol";
import { busyWorkers } from "../workers";

export const HEAD = 200;
export const GROUP = 500;

export type Node =
  | { kind: "session"; tag: string }
  /** The experiment being made; `worker`: a parallel loop's, one node per worker in flight. */
  | { kind: "running"; tag: string; worker?: number }
  | { kind: "experiment"; tag: string; number: number }
  /** Older experiments at ledger positions [start, end) (oldest first). */
  | { kind: "group"; tag: string; start: number; end: number }
  | { kind: "file"; tag: string; number: number; commit: string; parent: string; change: FileChange }
  | { kind: "message"; id: string; text: string };

export type FetchPage = (
  tag: string | null,
  offset: number,
  limit: number,
  newestFirst: boolean,
) => Promise<ExperimentsPage>;

class Session {
  branch = "";
  total = 0;
  totalKnown = false;
  counts: Counts = {};
  best: number | null = null;
  bestNumber: number | null = null;
  /** Experiments by ledger position (oldest first); holes are not loaded yet. */
  readonly items: (Experiment | undefined)[] = [];
  readonly byNumber = new Map<number, number>();
  readonly inflight = new Map<string, Promise<void>>();

  constructor(readonly tag: string) {}

  put(offset: number, experiment: Experiment): void {
    const previous = this.items[offset];
    if (previous && previous.number !== experiment.number) this.byNumber.delete(previous.number);
    this.items[offset] = experiment;
    this.byNumber.set(experiment.number, offset);
  }

  missing(start: number, end: number): boolean {
    for (let i = start; i < end; i++) if (!this.items[i]) return true;
    return false;
  }
}

/** Where the loop's state is held (the session, once): the model reads it, never copies it. */
export interface LoopSource {
  readonly state: LoopState | undefined;
}

type Listener<T> = (value: T) => void;

export class ResultsModel {
  private sessions = new Map<string, Session>();
  private order: string[] = [];
  private readonly listeners: Listener<string | undefined>[] = [];
  private readonly recordListeners: Listener<{ tag: string; experiment: Experiment }>[] = [];

  constructor(
    private readonly fetchPage: FetchPage,
    private readonly loop: LoopSource,
  ) {}

  get state(): LoopState | undefined {
    return this.loop.state;
  }

  /** Called with a session tag whose children changed, or undefined when the roots changed. */
  onChange(listener: Listener<string | undefined>): { dispose(): void } {
    return subscribe(this.listeners, listener);
  }

  /** Called with each experiment recorded, after the model took it (the chart appends it). */
  onRecord(listener: Listener<{ tag: string; experiment: Experiment }>): { dispose(): void } {
    return subscribe(this.recordListeners, listener);
  }

  private emit(tag: string | undefined): void {
    for (const listener of [...this.listeners]) listener(tag);
  }

  /** How many times the model forgot everything: a follower holding experiments reloads. */
  epoch = 0;

  /** Forget everything (daemon restarted, root changed): the next reads fetch anew. */
  reset(): void {
    this.epoch += 1;
    this.sessions.clear();
    this.order = [];
    this.emit(undefined);
  }

  get currentTag(): string | undefined {
    if (!this.state || (this.state.mode ?? "none") === "none") return this.order[0];
    return this.state.tag ?? "";
  }

  get direction(): string | undefined {
    return this.state?.direction || undefined;
  }

  private session(tag: string): Session {
    let session = this.sessions.get(tag);
    if (!session) {
      session = new Session(tag);
      this.sessions.set(tag, session);
    }
    return session;
  }

  /**
   * The loop's state changed: `this.state` is the new one, `previous` the one before (for what to
   * refresh). Without a state (the daemon went away) the sessions stay as they were.
   */
  stateChanged(previous: LoopState | undefined): void {
    const state = this.state;
    if (!state) {
      this.emit(undefined);
      return;
    }
    const before = this.order.join("\n");
    const runningBefore = this.runningKey(previous);
    const summaries: SessionSummary[] = [...(state.sessions ?? [])];
    const mode = state.mode ?? "none";
    if (mode !== "none" && !summaries.some((s) => s.tag === (state.tag ?? ""))) {
      summaries.unshift({
        tag: state.tag ?? "",
        branch: state.branch ?? "",
        total: -1,
        counts: state.counts ?? {},
        best: state.best ?? null,
        best_number: state.best_number ?? null,
      });
    }
    const changed = new Set<string>();
    const shownNumbers = new Map([...this.sessions.values()].map((x) => [x.tag, numbersKey(x)]));
    for (const summary of summaries) {
      const session = this.session(summary.tag);
      session.branch = summary.branch;
      session.counts = summary.counts;
      if (summary.total >= 0) {
        if (summary.total !== session.total || !session.totalKnown) changed.add(summary.tag);
        session.total = Math.max(summary.total, session.items.length);
        session.totalKnown = true;
      }
      if (summary.best !== undefined) session.best = summary.best ?? null;
      if (summary.best_number !== undefined) session.bestNumber = summary.best_number ?? null;
    }
    if (mode !== "none") {
      const current = this.session(state.tag ?? "");
      // The loop's own counts are its newest.
      if (state.counts) current.counts = state.counts;
      if (state.best !== undefined && state.best !== null) current.best = state.best;
      if (state.best_number !== undefined && state.best_number !== null) {
        current.bestNumber = state.best_number;
      }
      // The running rows show the phase and the elapsed time: refresh them when they move.
      if (runningBefore !== this.runningKey()) changed.add(state.tag ?? "");
    }
    // New counts or a new best: the header (and the chart's summary) show them.
    for (const session of this.sessions.values()) {
      if (shownNumbers.get(session.tag) !== numbersKey(session)) changed.add(session.tag);
    }
    // The current session first, then the others as the daemon lists them (newest first).
    const tags = summaries.map((s) => s.tag);
    const current = mode !== "none" ? (state.tag ?? "") : undefined;
    this.order = current === undefined ? tags : [current, ...tags.filter((t) => t !== current)];
    for (const tag of [...this.sessions.keys()]) {
      if (!this.order.includes(tag)) this.sessions.delete(tag);
    }
    if (before !== this.order.join("\n")) this.emit(undefined);
    else for (const tag of changed) this.emit(tag);
  }

  /** The number of the experiment being made, when the loop is making one. */
  runningNumber(state = this.state): number | undefined {
    if (!state || state.mode !== "loop" || state.current === null || state.current === undefined) {
      return undefined;
    }
    if (!ACTIVE_PHASES.includes(state.phase) || state.phase === "paused") return undefined;
    const session = this.sessions.get(state.tag ?? "");
    if (session?.byNumber.has(state.current)) return undefined;
    return state.current;
  }

  /** A parallel loop's workers in flight whose experiment is not recorded yet, lowest first. */
  runningWorkers(state = this.state): WorkerState[] {
    if (!state || !ACTIVE_PHASES.includes(state.phase)) return [];
    const session = this.sessions.get(state.tag ?? "");
    return busyWorkers(state).filter((w) => !session?.byNumber.has(w.number!));
  }

  /** What the running rows show, as one string: they are refreshed when it changes. */
  private runningKey(state = this.state): string {
    if (!state) return "";
    if ((state.workers ?? []).length > 0) {
      return this.runningWorkers(state)
        .map((w) => `${w.worker}|${w.number}|${w.phase}|${w.elapsed_s}|${w.description}`)
        .join("\n");
    }
    const running = this.runningNumber(state);
    return running === undefined ? "" : `${running}|${state.phase}|${state.message}|${state.elapsed_s}`;
  }

  /** The row of a running node: the loop's experiment, or one worker's. */
  runningRow(node: Extract<Node, { kind: "running" }>): Row | undefined {
    const state = this.state;
    if (!state) return undefined;
    if (node.worker === undefined) return runningRow(state);
    const worker = (state.workers ?? []).find((w) => w.worker === node.worker);
    return worker ? workerRow(state, worker) : undefined;
  }

  record(event: ExperimentRecorded): void {
    const tag = event.tag;
    if (!this.sessions.has(tag)) {
      this.order.push(tag);
      this.emit(undefined);
    }
    const session = this.session(tag);
    const experiment = { ...event.experiment, tag: event.experiment.tag || tag };
    const known = session.byNumber.get(experiment.number);
    if (known !== undefined) {
      session.put(known, experiment);
    } else {
      // A stateChanged may already have counted it (its slot at the end is still empty).
      const last = session.total - 1;
      const offset = last >= 0 && !session.items[last] && last >= session.items.length - 1 ? last : session.total;
      session.put(offset, experiment);
      session.total = Math.max(session.total, offset + 1);
    }
    // The counts and the best are the daemon's: the stateChanged after this record brings them.
    // Never worked out here too, or the tree and the chart disagree with the daemon.
    this.emit(tag);
    for (const listener of [...this.recordListeners]) listener({ tag, experiment });
  }

  roots(): Node[] {
    return this.order.map((tag) => ({ kind: "session", tag }));
  }

  hasSessions(): boolean {
    return this.order.length > 0;
  }

  summary(tag: string): { branch: string; total: number; counts: Counts; best: number | null; bestNumber: number | null } {
    const s = this.session(tag);
    return { branch: s.branch, total: s.total, counts: s.counts, best: s.best, bestNumber: s.bestNumber };
  }

  experiment(tag: string, number: number): Experiment | undefined {
    const session = this.sessions.get(tag);
    const offset = session?.byNumber.get(number);
    return offset === undefined ? undefined : session!.items[offset];
  }

  /** Loaded experiments of a session, oldest first (for the chart and quick picks). */
  loaded(tag: string): Experiment[] {
    return (this.sessions.get(tag)?.items ?? []).filter((e): e is Experiment => e !== undefined);
  }

  private async ensureTotal(session: Session): Promise<void> {
    if (session.totalKnown) return;
    await this.load(session, "head", async () => {
      const page = await this.fetchPage(session.tag || null, 0, HEAD, true);
      this.absorbNewestFirst(session, page);
    });
  }

  private absorbNewestFirst(session: Session, page: ExperimentsPage): void {
    session.total = Math.max(page.total, session.items.length);
    session.totalKnown = true;
    page.items.forEach((experiment, i) => {
      const offset = page.total - 1 - (page.offset + i);
      if (offset >= 0) session.put(offset, { ...experiment, tag: experiment.tag || session.tag });
    });
  }

  /** Make sure ledger positions [start, end) are loaded, in one request. */
  private async ensureRange(session: Session, start: number, end: number): Promise<void> {
    if (end <= start || !session.missing(start, end)) return;
    await this.load(session, `${start}:${end}`, async () => {
      const page = await this.fetchPage(session.tag || null, start, end - start, false);
      page.items.forEach((experiment, i) =>
        session.put(page.offset + i, { ...experiment, tag: experiment.tag || session.tag }),
      );
      if (page.total > session.total) session.total = page.total;
    });
  }

  private load(session: Session, key: string, work: () => Promise<void>): Promise<void> {
    let pending = session.inflight.get(key);
    if (!pending) {
      pending = work().finally(() => session.inflight.delete(key));
      session.inflight.set(key, pending);
    }
    return pending;
  }

  async sessionChildren(tag: string): Promise<Node[]> {
    const session = this.session(tag);
    await this.ensureTotal(session);
    const total = session.total;
    const headStart = Math.max(0, total - HEAD);
    await this.ensureRange(session, headStart, total);
    const nodes: Node[] = [];
    if (tag === this.currentTag) {
      const state = this.state;
      if (state && (state.workers ?? []).length > 0) {
        // A parallel loop: each experiment in flight on top, with its worker.
        for (const w of this.runningWorkers()) nodes.push({ kind: "running", tag, worker: w.worker });
      } else if (this.runningNumber() !== undefined) {
        nodes.push({ kind: "running", tag });
      }
    }
    for (let offset = total - 1; offset >= headStart; offset--) {
      const experiment = session.items[offset];
      if (experiment) nodes.push({ kind: "experiment", tag, number: experiment.number });
    }
    const groups = Math.ceil(headStart / GROUP);
    for (let g = groups - 1; g >= 0; g--) {
      nodes.push({ kind: "group", tag, start: g * GROUP, end: Math.min(headStart, (g + 1) * GROUP) });
    }
    if (nodes.length === 0) {
      nodes.push({ kind: "message", id: `empty:${tag}`, text: "No experiments yet" });
    }
    return nodes;
  }

  async groupChildren(tag: string, start: number, end: number): Promise<Node[]> {
    const session = this.session(tag);
    await this.ensureRange(session, start, end);
    const nodes: Node[] = [];
    for (let offset = end - 1; offset >= start; offset--) {
      const experiment = session.items[offset];
      if (experiment) nodes.push({ kind: "experiment", tag, number: experiment.number });
    }
    return nodes;
  }

  /** All experiments of a session, oldest first, loading what is missing in large pages. */
  async all(tag: string, pageSize = 2000): Promise<Experiment[]> {
    const session = this.session(tag);
    await this.ensureTotal(session);
    for (let start = 0; start < session.total; start += pageSize) {
      await this.ensureRange(session, start, Math.min(session.total, start + pageSize));
    }
    return this.loaded(tag);
  }

  // ---- rows: what each node shows ---------------------------------------------------------------

  sessionRow(tag: string): Row {
    const s = this.summary(tag);
    const current = tag === this.currentTag && this.state && (this.state.mode ?? "none") !== "none";
    const observer = current && this.state?.mode === "observer";
    const active = current && this.state && ACTIVE_PHASES.includes(this.state.phase);
    const best = s.best !== null ? `best ${formatMetric(s.best)}${s.bestNumber !== null ? ` (#${s.bestNumber})` : ""}` : "";
    // From 10,000 the numbers are compact ("99k") and the counts come first: a 560 px side bar
    // shows every count (the best, cut first, is on its row and in the tooltip); below, the best
    // first as always. The tooltip has every digit.
    const counts = countsText(s.counts, true);
    const many = tally(s.counts).experiments >= COMPACT_FROM;
    const loaded = this.loaded(tag);
    const cost = formatCost(loaded);
    return {
      id: `session:${tag}`,
      label: s.branch || (tag ? `autoresearch/${tag}` : "results.tsv"),
      description: many ? [counts, best].filter((p) => p).join(" · ") : [best, counts].filter((p) => p).join(" · "),
      tooltip:
        `${s.branch || tag || "results.tsv"}: ${countsText(s.counts)} after the baseline` +
        (s.best !== null
          ? `\nbest ${this.state?.metric || "metric"} ${formatMetric(s.best)}${s.bestNumber !== null ? ` (#${s.bestNumber})` : ""}`
          : "") +
        (cost ? `\nagent cost: ${cost}${loaded.length < s.total ? " (loaded experiments)" : ""}` : "") +
        (observer ? "\nObserved: written by another tool" : ""),
      icon: observer ? "eye" : active ? "beaker" : "git-branch",
      color: "",
      contextValue: `autoresearch.session${current ? ".current" : ""}`,
    };
  }

  experimentRow(tag: string, number: number): Row | undefined {
    const experiment = this.experiment(tag, number);
    if (!experiment) return undefined;
    const s = this.sessions.get(tag)!;
    const metricName = tag === this.currentTag ? (this.state?.metric ?? "") : "";
    return experimentRow(experiment, this.reference(tag, number), s.bestNumber, metricName);
  }

  /**
   * What an experiment was measured against: the last keep before it (the branch's tip, so the
   * best then; the daemon's "worse by" says the same). Undefined for the baseline, or when an
   * experiment in between is not loaded yet.
   */
  reference(tag: string, number: number): Reference | undefined {
    const session = this.sessions.get(tag);
    const offset = session?.byNumber.get(number);
    if (!session || offset === undefined) return undefined;
    for (let i = offset - 1; i >= 0; i--) {
      const before = session.items[i];
      if (!before) return undefined;
      if (before.status === "keep") return { number: before.number, metric: before.metric };
    }
    return undefined;
  }

  groupRow(tag: string, start: number, end: number): Row {
    return {
      id: `group:${tag}:${start}`, // stable while the head grows, so an open group stays open
      label: `#${start}–#${end - 1}`,
      description: `${end - start} experiments`,
      tooltip: `Older experiments, positions ${start} to ${end - 1} of the ledger`,
      icon: "history",
      color: "",
      contextValue: "autoresearch.group",
    };
  }

  /** What the current session shows now, as rows (for the e2e state dump). */
  async currentRows(): Promise<{ session: Row | undefined; items: Row[] }> {
    const tag = this.currentTag;
    if (tag === undefined) return { session: undefined, items: [] };
    const items: Row[] = [];
    for (const node of await this.sessionChildren(tag)) {
      if (node.kind === "experiment") {
        const row = this.experimentRow(tag, node.number);
        if (row) items.push(row);
      } else if (node.kind === "running") {
        const row = this.runningRow(node);
        if (row) items.push(row);
      } else if (node.kind === "group") {
        items.push(this.groupRow(tag, node.start, node.end));
      }
    }
    return { session: this.sessionRow(tag), items };
  }

  messageRow(id: string, text: string): Row {
    return { id, label: oneLine(text), description: "", tooltip: text, icon: "info", color: "", contextValue: "" };
  }
}

function numbersKey(s: Session): string {
  return `${s.counts.keep ?? 0}|${s.counts.discard ?? 0}|${s.counts.crash ?? 0}|${s.best}|${s.bestNumber}`;
}

function subscribe<T>(listeners: Listener<T>[], listener: Listener<T>): { dispose(): void } {
  listeners.push(listener);
  return {
    dispose() {
      const at = listeners.indexOf(listener);
      if (at >= 0) listeners.splice(at, 1);
    },
  };
}
