// The chart's self-contained page (extension/chart/chartHtml.ts): a strict policy (nothing loads,
// only the nonce runs) and text inside its <script> elements that cannot end them early, whatever
// an experiment's description holds. The e2e chart scenarios draw it in the real VS Code.
import assert from "node:assert/strict";
import { test } from "node:test";
import vm from "node:vm";
import * as esbuild from "esbuild";
import { chartHtml, contentSecurityPolicy, inScript } from "../../extension/chart/chartHtml";
import type { ToWebview } from "../../extension/chart/chartData";

const NONCE = "bm9uY2Vub25jZW5vbmNl";
const hostile = "</script><script>alert(1)</script><!-- </SCRIPT > </style>";
const first: ToWebview = {
  type: "reset",
  metric: "val</script>",
  direction: "lower",
  points: [{ number: 0, status: "keep", metric: 1.5, description: hostile }],
  summary: { counts: { keep: 1 }, best: 1.5 },
};

/** The elements the HTML parser ends at the first `</script` / `</style` after their start. */
function elements(page: string, tag: "script" | "style"): { open: string; text: string }[] {
  const out: { open: string; text: string }[] = [];
  const re = new RegExp(`<${tag}\\b([^>]*)>`, "gi");
  for (let m = re.exec(page); m; m = re.exec(page)) {
    const end = page.toLowerCase().indexOf(`</${tag}`, re.lastIndex);
    assert.ok(end >= 0, `an unclosed <${tag}>`);
    out.push({ open: m[1]!, text: page.slice(re.lastIndex, end) });
    re.lastIndex = end;
  }
  return out;
}

test("the policy loads nothing and runs only what carries the nonce", () => {
  const csp = contentSecurityPolicy(NONCE);
  assert.equal(csp, `default-src 'none'; style-src 'nonce-${NONCE}'; script-src 'nonce-${NONCE}'; img-src data:`);
  assert.doesNotMatch(csp, /unsafe|https?:|\*/);
  const page = chartHtml({ nonce: NONCE, script: "void 0;", style: ".uplot{}", first: { id: 1, message: first } });
  assert.ok(page.includes(`content="${csp}"`));
  for (const tag of ["script", "style"] as const) {
    const found = elements(page, tag);
    assert.ok(found.length >= 2, `${tag} elements`);
    for (const e of found) assert.match(e.open, new RegExp(`nonce="${NONCE}"`), `every <${tag}> carries the nonce`);
  }
  assert.doesNotMatch(page, /\bsrc=|href=/, "nothing is fetched");
});

test("an experiment's description cannot end the embedded data early: it parses back whole", () => {
  const page = chartHtml({ nonce: NONCE, script: "void 0;", style: "", first: { id: 7, message: first } });
  const scripts = elements(page, "script");
  assert.equal(scripts.length, 2, "the data block and the script, nothing injected");
  assert.match(scripts[0]!.open, /type="application\/json" id="first"/);
  assert.doesNotMatch(scripts[0]!.text, /</, "no '<' left in the JSON");
  assert.deepEqual(JSON.parse(scripts[0]!.text), { id: 7, message: first });
  assert.equal(scripts[1]!.text, "void 0;");
});

test("without data in time the page has no data block (the session comes as a message)", () => {
  const page = chartHtml({ nonce: NONCE, script: "void 0;", style: "" });
  assert.ok(!page.includes('id="first"'));
  assert.equal(elements(page, "script").length, 1);
});

test("a script with '</script' in its strings, templates and regular expressions runs the same inline", () => {
  const code = 'globalThis.a = "</script>"; globalThis.b = `</Script ${1}`; globalThis.c = /<\\/script>/.test("</script>"); globalThis.d = "</style>";';
  const escaped = inScript(code);
  assert.doesNotMatch(escaped, /<\/(script|style)/i);
  const run = (js: string) => vm.runInNewContext(`${js}; JSON.stringify([a, b, c, d])`) as string;
  assert.equal(run(escaped), run(code));
  assert.equal(run(code), JSON.stringify(["</script>", "</Script 1", true, "</style>"]));
  const page = chartHtml({ nonce: NONCE, script: code, style: "a::after{content:'</style>'}" });
  assert.equal(elements(page, "script").length, 1);
  assert.equal(elements(page, "script")[0]!.text, escaped);
  assert.equal(elements(page, "style").length, 2);
});

test("the webview's bundle, as shipped, is safe inline: no comment opening or script tag in it", async () => {
  const result = await esbuild.build({
    entryPoints: ["extension/chart/webview/chartView.ts"],
    bundle: true,
    write: false,
    outdir: "out/unused",
    platform: "browser",
    format: "iife",
    minify: true,
    logLevel: "silent",
  });
  const js = result.outputFiles.find((f) => f.path.endsWith(".js"))!.text;
  const css = result.outputFiles.find((f) => f.path.endsWith(".css"))!.text;
  // `<!--` or `<script` would put the HTML parser in its escaped states, where the end tag rules
  // differ: inScript does not handle those.
  assert.doesNotMatch(js, /<!--|<script/i);
  const page = chartHtml({ nonce: NONCE, script: js, style: css, first: { id: 1, message: first } });
  const scripts = elements(page, "script");
  assert.equal(scripts.length, 2);
  assert.equal(scripts[1]!.text, inScript(js));
  assert.equal(elements(page, "style")[0]!.text, css);
});
