// Shared by the tree's unit tests: a results model over a fake daemon's pages.
import type { Experiment, ExperimentsPage, LoopState } from "../../extension/protocol";
import { ResultsModel, type FetchPage } from "../../extension/tree/treeModel";

/** A model over `fetch`, and the loop's state held outside it (as the session holds it). */
export function modelOver(fetch: FetchPage) {
  const loop: { state: LoopState | undefined } = { state: undefined };
  const model = new ResultsModel(fetch, loop);
  const setState = (next: LoopState) => {
    const previous = loop.state;
    loop.state = next;
    model.stateChanged(previous);
  };
  return { model, setState };
}

/** The daemon's pages of `rows` (tag nov25 unless asked), newest first when asked. */
export function pagesOf(rows: Experiment[]): FetchPage {
  return async (tag: string | null, offset: number, limit: number, newestFirst: boolean): Promise<ExperimentsPage> => {
    const ordered = newestFirst ? [...rows].reverse() : rows;
    return { root: "/r", tag: tag ?? "nov25", total: rows.length, offset, items: ordered.slice(offset, offset + limit) };
  };
}
