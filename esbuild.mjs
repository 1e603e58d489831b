// Bundles the extension host code (Node, CommonJS, `vscode` external) into dist/extension.js, the
// chart webview script (browser, with uPlot and its CSS) into dist/chart.js + dist/chart.css, and,
// with --tests, the unit tests into out/tests/extension/ for `node --test`, and with --e2e-hook
// the end-to-end suite's state dump into out/e2e/hook.js (loaded only when AUTORESEARCH_E2E_HOOK
// names it; not in dist/, so never in the .vsix).
import * as esbuild from "esbuild";
import { readdirSync, rmSync } from "node:fs";

const production = process.argv.includes("--production");
const watch = process.argv.includes("--watch");
const tests = process.argv.includes("--tests");
const e2eHook = process.argv.includes("--e2e-hook");

const common = {
  bundle: true,
  sourcemap: production ? false : "linked",
  minify: production,
  logLevel: "warning",
  target: "es2022",
};

const targets = e2eHook
  ? [
      {
        ...common,
        entryPoints: ["tests/e2e/hook/hook.ts"],
        outfile: "out/e2e/hook.js",
        platform: "node",
        format: "cjs",
        sourcemap: "inline",
      },
    ]
  : tests
  ? [
      {
        ...common,
        entryPoints: readdirSync("tests/extension")
          .filter((name) => name.endsWith(".test.ts"))
          .map((name) => `tests/extension/${name}`),
        outdir: "out/tests/extension",
        platform: "node",
        format: "cjs",
        // typescript, vscode-jsonrpc: loaded from node_modules. `vscode` is not installed, so a
        // test that reaches a module importing it fails loudly: tests cover the pure modules.
        packages: "external",
        sourcemap: "inline",
      },
    ]
  : [
      {
        ...common,
        entryPoints: ["extension/extension.ts"],
        outfile: "dist/extension.js",
        platform: "node",
        format: "cjs",
        external: ["vscode"],
      },
      {
        ...common,
        entryPoints: { chart: "extension/chart/webview/chartView.ts" },
        outdir: "dist",
        platform: "browser",
        format: "iife",
      },
    ];

if (watch) {
  for (const options of targets) {
    const context = await esbuild.context(options);
    await context.watch();
  }
  console.log("esbuild: watching");
} else {
  // A fresh output folder: no stale bundle or map from an earlier build ends up in the .vsix.
  rmSync(e2eHook ? "out/e2e" : tests ? "out/tests/extension" : "dist", { recursive: true, force: true });
  await Promise.all(targets.map((options) => esbuild.build(options)));
}
