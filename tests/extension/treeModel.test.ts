import assert from "node:assert/strict";
import { test } from "node:test";
import type { Experiment, ExperimentsPage, LoopState } from "../../extension/protocol";
import { GROUP, HEAD, type Node } from "../../extension/tree/treeModel";
import { modelOver } from "./treeFixtures";

function ledger(n: number, tag = "nov25"): Experiment[] {
  return Array.from({ length: n }, (_, i) => ({
    number: i,
    commit: `c${i}`.padEnd(40, "0"),
    status: i % 3 === 0 ? "keep" : i % 3 === 1 ? "discard" : "crash",
    metric: i % 3 === 2 ? null : 2 - i / n,
    tag,
  }));
}

/** A fake daemon over a ledger, counting requests and rows sent. */
function fakeDaemon(rows: Experiment[]) {
  const calls: { offset: number; limit: number; newestFirst: boolean }[] = [];
  let sent = 0;
  const fetch = async (tag: string | null, offset: number, limit: number, newestFirst: boolean): Promise<ExperimentsPage> => {
    calls.push({ offset, limit, newestFirst });
    const ordered = newestFirst ? [...rows].reverse() : rows;
    const items = ordered.slice(offset, offset + limit);
    sent += items.length;
    return { root: "/r", tag: tag ?? "nov25", total: rows.length, offset, items };
  };
  return { fetch, calls, sent: () => sent };
}

const state = (extra: Partial<LoopState> = {}): LoopState => ({
  root: "/r",
  phase: "running",
  mode: "loop",
  tag: "nov25",
  branch: "autoresearch/nov25",
  direction: "lower",
  metric: "val_bpb",
  ...extra,
});

test("a session lists its newest experiments first", async () => {
  const daemon = fakeDaemon(ledger(5));
  const { model, setState } = modelOver(daemon.fetch);
  setState(state({ current: null, sessions: [{ tag: "nov25", branch: "autoresearch/nov25", total: 5, counts: {} }] }));
  assert.deepEqual(model.roots(), [{ kind: "session", tag: "nov25" }]);
  const children = await model.sessionChildren("nov25");
  assert.deepEqual(children.map((n) => (n.kind === "experiment" ? n.number : n.kind)), [4, 3, 2, 1, 0]);
});

test("10,000 experiments: only the newest page is fetched, older ones in lazy groups", async () => {
  const daemon = fakeDaemon(ledger(10_000));
  const { model, setState } = modelOver(daemon.fetch);
  setState(state({ sessions: [{ tag: "nov25", branch: "b", total: 10_000, counts: {} }] }));
  const children = await model.sessionChildren("nov25");
  const experiments = children.filter((n) => n.kind === "experiment");
  const groups = children.filter((n): n is Extract<Node, { kind: "group" }> => n.kind === "group");
  assert.equal(experiments.length, HEAD);
  assert.equal(groups.length, Math.ceil((10_000 - HEAD) / GROUP));
  assert.equal(daemon.sent(), HEAD, "one page, not the whole ledger");
  assert.deepEqual(groups[0], { kind: "group", tag: "nov25", start: 9500, end: 9800 });
  assert.deepEqual(groups[groups.length - 1], { kind: "group", tag: "nov25", start: 0, end: 500 });
  const oldest = await model.groupChildren("nov25", 0, 500);
  assert.equal(oldest.length, 500);
  assert.deepEqual(oldest[0], { kind: "experiment", tag: "nov25", number: 499 });
  assert.equal(daemon.calls.length, 2);
  // Expanding again costs nothing.
  await model.groupChildren("nov25", 0, 500);
  await model.sessionChildren("nov25");
  assert.equal(daemon.calls.length, 2);
});

test("a recorded experiment goes on top without a fetch; the best and the counts are the daemon's", async () => {
  const rows = ledger(3);
  const daemon = fakeDaemon(rows);
  const { model, setState } = modelOver(daemon.fetch);
  setState(state({ current: 3, best: 2, best_number: 0, sessions: [{ tag: "nov25", branch: "b", total: 3, counts: { keep: 1, discard: 1, crash: 1 }, best: 2, best_number: 0 }] }));
  let first = await model.sessionChildren("nov25");
  assert.deepEqual(first[0], { kind: "running", tag: "nov25" });
  const changed: (string | undefined)[] = [];
  model.onChange((tag) => changed.push(tag));
  model.record({ root: "/r", tag: "nov25", experiment: { number: 3, commit: "d", status: "keep", metric: 0.5 } });
  assert.deepEqual(changed, ["nov25"]);
  first = await model.sessionChildren("nov25");
  assert.deepEqual(first.slice(0, 2), [
    { kind: "experiment", tag: "nov25", number: 3 },
    { kind: "experiment", tag: "nov25", number: 2 },
  ]);
  assert.equal(daemon.calls.length, 1);
  assert.equal(model.summary("nov25").total, 4);
  assert.equal(model.summary("nov25").best, 2, "the best is the daemon's: its next stateChanged brings it");
  assert.equal(model.summary("nov25").bestNumber, 0);
  assert.equal(model.summary("nov25").counts.keep, 1, "the counts are the daemon's: its next stateChanged brings them");
  setState(state({ current: 4, best: 0.5, best_number: 3, counts: { keep: 2, discard: 1, crash: 1 } }));
  assert.equal(model.summary("nov25").counts.keep, 2);
  assert.equal(model.summary("nov25").best, 0.5);
  assert.equal(model.summary("nov25").bestNumber, 3);
  assert.match(model.sessionRow("nov25").description, /^best 0\.5 \(#3\) · 4 experiments · 2 keep · 1 discard · 1 crash$/);
  assert.match(model.sessionRow("nov25").tooltip, /4 experiments · 2 keep · 1 discard · 1 crash after the baseline/);
  // #3 is measured against the last keep before it, the best when it ran (#0, 2): as the daemon decided.
  assert.equal(model.experimentRow("nov25", 3)?.description, "0.5 · ★ best · Δ −1.5");
  assert.equal(model.reference("nov25", 0), undefined, "the baseline has nothing before it");
});

test("stateChanged counting an experiment before its record does not count it twice", async () => {
  const rows = ledger(2);
  const { model, setState } = modelOver(fakeDaemon(rows).fetch);
  setState(state({ sessions: [{ tag: "nov25", branch: "b", total: 2, counts: {} }] }));
  await model.sessionChildren("nov25");
  setState(state({ sessions: [{ tag: "nov25", branch: "b", total: 3, counts: {} }] }));
  model.record({ root: "/r", tag: "nov25", experiment: { number: 2, commit: "x", status: "discard", metric: 3 } });
  assert.equal(model.summary("nov25").total, 3);
  const children = await model.sessionChildren("nov25");
  assert.deepEqual(children.map((n) => (n.kind === "experiment" ? n.number : n.kind)), [2, 1, 0]);
});

test("observer mode without a tag shows results.tsv as the session", async () => {
  const { model, setState } = modelOver(fakeDaemon(ledger(2, "")).fetch);
  setState({ root: "/r", phase: "idle", mode: "observer", tag: "", sessions: [] });
  assert.deepEqual(model.roots(), [{ kind: "session", tag: "" }]);
  assert.equal(model.sessionRow("").label, "results.tsv");
  assert.equal(model.sessionRow("").icon, "eye");
  assert.equal((await model.sessionChildren("")).length, 2);
});

test("the rows of the current session are what the e2e dump reports", async () => {
  const { model, setState } = modelOver(fakeDaemon(ledger(4)).fetch);
  setState(state({ current: 4, sessions: [{ tag: "nov25", branch: "autoresearch/nov25", total: 4, counts: { keep: 2, discard: 1, crash: 1 } }] }));
  const rows = await model.currentRows();
  assert.equal(rows.session?.label, "autoresearch/nov25");
  assert.match(rows.session!.description, /2 keep · 1 discard · 1 crash/);
  assert.deepEqual(rows.items.map((r) => r.icon), ["loading~spin", "pass-filled", "error", "circle-slash", "pass-filled"]);
});

test("reset forgets everything", async () => {
  const daemon = fakeDaemon(ledger(3));
  const { model, setState } = modelOver(daemon.fetch);
  setState(state({ sessions: [{ tag: "nov25", branch: "b", total: 3, counts: {} }] }));
  await model.sessionChildren("nov25");
  model.reset();
  assert.deepEqual(model.roots(), []);
});

test("at 100,000 experiments the header leads with compact counts (tests/e2e/scenarios/tree-width: they fit 560 px); the tooltip has every digit", () => {
  const { model, setState } = modelOver(fakeDaemon([]).fetch);
  const counts = { keep: 19_200, discard: 76_145, crash: 4_654 };
  setState(state({ current: null, phase: "stopped", best: 0.981234, best_number: 99_871, counts, sessions: [{ tag: "nov25", branch: "autoresearch/nov25", total: 100_000, counts, best: 0.981234, best_number: 99_871 }] }));
  const row = model.sessionRow("nov25");
  assert.equal(row.description, "99k experiments · 19k keep · 76k discard · 4654 crash · best 0.981234 (#99871)");
  assert.match(row.tooltip, /99,999 experiments · 19,200 keep · 76,145 discard · 4,654 crash after the baseline/);
  // Below 10,000: every digit, the best first (as the side bar showed it so far).
  const nineK = { keep: 1920, discard: 7610, crash: 469 };
  setState(state({ current: null, phase: "stopped", best: 0.981234, best_number: 9871, counts: nineK, sessions: [] }));
  assert.equal(model.sessionRow("nov25").description, "best 0.981234 (#9871) · 9999 experiments · 1920 keep · 7610 discard · 469 crash");
});

test("the model tells its followers about each record after taking it (the chart appends from there)", async () => {
  const { model, setState } = modelOver(fakeDaemon(ledger(2)).fetch);
  setState(state({ sessions: [{ tag: "nov25", branch: "b", total: 2, counts: {} }] }));
  const seen: string[] = [];
  model.onChange((tag) => seen.push(`change ${tag}`));
  const sub = model.onRecord(({ tag, experiment }) => seen.push(`record ${tag} #${experiment.number} ${model.experiment(tag, experiment.number) ? "taken" : "missing"}`));
  model.record({ root: "/r", tag: "nov25", experiment: { number: 2, commit: "x", status: "keep", metric: 1 } });
  sub.dispose();
  model.record({ root: "/r", tag: "nov25", experiment: { number: 3, commit: "y", status: "keep", metric: 0.5 } });
  assert.deepEqual(seen, ["change nov25", "record nov25 #2 taken", "change nov25"]);
});

test("new counts or a new best alone refresh the session (its header, the chart's summary)", async () => {
  const { model, setState } = modelOver(fakeDaemon(ledger(2)).fetch);
  const summary = { tag: "nov25", branch: "b", total: 2, counts: { keep: 1 } };
  setState(state({ phase: "stopped", current: null, sessions: [summary] }));
  const seen: (string | undefined)[] = [];
  model.onChange((tag) => seen.push(tag));
  setState(state({ phase: "stopped", current: null, sessions: [summary] }));
  assert.deepEqual(seen, [], "nothing new, nothing refreshed");
  setState(state({ phase: "stopped", current: null, counts: { keep: 1, discard: 1 }, sessions: [summary] }));
  assert.deepEqual(seen, ["nov25"]);
  setState(state({ phase: "stopped", current: null, counts: { keep: 1, discard: 1 }, best: 1.5, best_number: 1, sessions: [summary] }));
  assert.deepEqual(seen, ["nov25", "nov25"]);
});

test("the session's agent cost says 'loaded experiments' only while some are not loaded", async () => {
  const priced = (rows: Experiment[]) => rows.map((e) => ({ ...e, cost_usd: 0.5 }));
  const whole = fakeDaemon(priced(ledger(5)));
  const small = modelOver(whole.fetch);
  small.setState(state({ current: null, sessions: [{ tag: "nov25", branch: "autoresearch/nov25", total: 5, counts: {} }] }));
  await small.model.sessionChildren("nov25"); // all 5 ledger rows, the baseline included
  const all = small.model.sessionRow("nov25").tooltip;
  assert.match(all, /agent cost: \$2\.5\b/);
  assert.doesNotMatch(all, /loaded experiments/);

  const n = HEAD + 10;
  const partial = modelOver(fakeDaemon(priced(ledger(n))).fetch);
  partial.setState(state({ current: null, sessions: [{ tag: "nov25", branch: "autoresearch/nov25", total: n, counts: {} }] }));
  await partial.model.sessionChildren("nov25"); // the newest HEAD only
  assert.match(partial.model.sessionRow("nov25").tooltip, /agent cost: .* \(loaded experiments\)/);
});
