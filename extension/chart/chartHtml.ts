// The chart webview's page, self-contained: its script and style inline (allowed by a nonce, the
// only source the content security policy names) and the first plot's data embedded as a JSON
// block. The webview then draws without fetching dist/chart.js through VS Code's resource
// service worker and without a message round trip (#21: click to plot under 1 s). Pure (no
// `vscode`): the unit tests check the escaping and the policy.
import type { ToWebview } from "./chartData";

export interface ChartPage {
  nonce: string;
  /** dist/chart.js and dist/chart.css as built. */
  script: string;
  style: string;
  /** The first plot's message, as the webview would otherwise be posted it; `id` names it in the
   * webview's `ready` answer (the extension then knows it need not send it again). */
  first?: { id: number; message: ToWebview };
}

/** The page's content security policy: nothing loads, only the nonce's script and styles run. */
export function contentSecurityPolicy(nonce: string): string {
  return ["default-src 'none'", `style-src 'nonce-${nonce}'`, `script-src 'nonce-${nonce}'`, "img-src data:"].join("; ");
}

/** Text put inside a <script> or <style> element: the parser must not see an end tag in it. In
 * JavaScript `<\/` is `</` in strings, template literals and regular expressions alike (the
 * bundle has no `<!--` or `<script`, which would need more: tests/extension/chartHtml.test.ts). */
export function inScript(text: string): string {
  return text.replace(/<\/(script|style)/gi, "<\\/$1");
}

/** JSON readable in a `<script type="application/json">` block: no `<` left to end it early. */
export function embeddedJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c");
}

export function chartHtml(page: ChartPage): string {
  const { nonce } = page;
  const first = page.first ? `<script type="application/json" id="first" nonce="${nonce}">${embeddedJson(page.first)}</script>\n` : "";
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${contentSecurityPolicy(nonce)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<style nonce="${nonce}">${inScript(page.style)}</style>
<style nonce="${nonce}">
  html, body { height: 100%; margin: 0; padding: 0; overflow: hidden; }
  body { color: var(--vscode-foreground); background: var(--vscode-editor-background);
         font-family: var(--vscode-font-family); font-size: var(--vscode-font-size);
         display: flex; flex-direction: column; }
  #summary { padding: 6px 12px; color: var(--vscode-descriptionForeground); }
  #chart { flex: 1; min-height: 0; padding: 0 8px 8px 0; }
  #curve { display: none; height: 35%; min-height: 120px; padding: 0 8px 8px 0; }
  #curve-label { display: none; padding: 2px 12px; color: var(--vscode-descriptionForeground); }
  #empty { display: none; padding: 24px; color: var(--vscode-descriptionForeground); }
  #tooltip { position: fixed; display: none; pointer-events: none; white-space: pre-wrap; max-width: 420px;
             padding: 4px 8px; z-index: 10; color: var(--vscode-editorHoverWidget-foreground);
             background: var(--vscode-editorHoverWidget-background);
             border: 1px solid var(--vscode-editorHoverWidget-border); }
  .key { margin-left: 10px; }
  .key.keep { color: var(--vscode-charts-green); }
  .key.discard { color: var(--vscode-disabledForeground); }
  .key.crash { color: var(--vscode-charts-red); }
  .key.best { color: var(--vscode-charts-blue); }
  .key.parallel { color: var(--vscode-charts-orange); }
  .u-over { cursor: pointer; }
</style>
<title>Autoresearch Chart</title>
</head>
<body>
<div id="summary">Loading…</div>
<div id="empty">No experiments yet.</div>
<div id="chart"></div>
<div id="curve-label"></div>
<div id="curve"></div>
<div id="tooltip"></div>
${first}<script nonce="${nonce}">${inScript(page.script)}</script>
</body>
</html>`;
}
