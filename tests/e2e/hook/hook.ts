// The e2e suite's hook, loaded by the extension (extension/testHook.ts) when the extension host's
// environment names it in AUTORESEARCH_E2E_HOOK: the state dump over the extension's probe.
// Bundled to out/e2e/hook.js by `node esbuild.mjs --e2e-hook`; never part of the .vsix.
import type { Probe, TestHook } from "../../../extension/testHook";
import { StateDump, startDump, toDumpRow } from "./e2eState";

export function attach(probe: Probe): TestHook {
  const dump = new StateDump();
  const at = () => new Date().toISOString();
  const subscriptions = [
    probe.onMessage(({ severity, text }) => dump.update({ lastMessage: { severity, text, at: at() } })),
    probe.onNotification((method) => dump.update({ lastNotification: { method, at: at() } })),
    startDump(
      dump,
      {
        daemon: probe.daemon,
        root: probe.root,
        loop: probe.loop,
        tree: async () => {
          const rows = await probe.tree();
          return { session: rows.session ? toDumpRow(rows.session) : null, items: rows.items.map(toDumpRow) };
        },
        statusBar: probe.statusBar,
        locks: probe.locks,
        chart: probe.chart,
      },
      probe.changed,
    ),
  ];
  return {
    flush: () => dump.flush(),
    dispose: () => subscriptions.forEach((s) => s.dispose()),
  };
}
