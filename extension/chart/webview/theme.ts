// The editor's theme for the webview's plots: colours and fonts read from VS Code's CSS variables.
import type uPlot from "uplot";

export function css(name: string, fallback: string): string {
  return getComputedStyle(document.body).getPropertyValue(name).trim() || fallback;
}

/** An axis drawn in the theme's foreground and grid colours and font. */
export function theme(): { axis: uPlot.Axis } {
  const foreground = css("--vscode-foreground", "#ccc");
  const grid = css("--vscode-editorWidget-border", "rgba(128,128,128,0.2)");
  const font = `${css("--vscode-font-size", "12px")} ${css("--vscode-font-family", "sans-serif")}`;
  return { axis: { stroke: foreground, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid }, font } };
}
