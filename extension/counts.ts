// How a session's counts read, in one place for the tree's header and tooltip, the chart, the
// status bar and the notifications. The numbers are the daemon's (its session summary, the
// baseline left out): nothing here counts experiments or picks a best. The total is the sum of
// the three, so a line always adds up. Pure and import-free: the chart's webview bundles it too.

export interface Tally {
  experiments: number;
  keep: number;
  discard: number;
  crash: number;
}

/** The daemon's counts with the missing ones as 0, and their sum. */
export function tally(counts: { keep?: number; discard?: number; crash?: number } | undefined): Tally {
  const keep = counts?.keep ?? 0;
  const discard = counts?.discard ?? 0;
  const crash = counts?.crash ?? 0;
  return { experiments: keep + discard + crash, keep, discard, crash };
}

/** 1234 -> "1,234": every digit, for tooltips, the chart and messages. */
export function exact(n: number): string {
  return n.toLocaleString("en-US");
}

/** From this many, numbers in a row are compact, and a header leads with its counts. */
export const COMPACT_FROM = 10_000;

/**
 * Below 10,000 every digit ("9999"); from there whole thousands ("12k", "100k") and millions
 * ("1.2M", "12M"): a side bar row's room. Cut, not rounded, so 99,999 never reads "100k".
 */
export function compact(n: number): string {
  const abs = Math.abs(n);
  if (abs < COMPACT_FROM) return String(n);
  if (abs < 1_000_000) return `${Math.trunc(n / 1000)}k`;
  if (abs < 10_000_000) return `${Math.trunc(n / 100_000) / 10}M`;
  return `${Math.trunc(n / 1_000_000)}M`;
}

/** "4 experiments · 2 keep · 1 discard · 1 crash"; `short`: compact numbers (the tree's header). */
export function countsText(counts: Parameters<typeof tally>[0], short = false): string {
  const t = tally(counts);
  const n = short ? compact : exact;
  return `${n(t.experiments)} experiment${t.experiments === 1 ? "" : "s"} · ${n(t.keep)} keep · ${n(t.discard)} discard · ${n(t.crash)} crash`;
}
