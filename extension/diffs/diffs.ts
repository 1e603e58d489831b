// Experiment diffs: a read-only file system on `autoresearch-rev:` that reads a file at a commit
// through the daemon's fileAt (so reverted experiments and Remote-SSH work), one file's diff
// (vscode.diff) and a whole experiment's (vscode.changes, else one diff per file).
import * as path from "node:path";
import * as vscode from "vscode";
import { formatMetric } from "../format";
import { Method, type ChangesResult, type DaemonApi, type FileChange } from "../protocol";

export const REV_SCHEME = "autoresearch-rev";

/** `autoresearch-rev:/<path>?root=…&commit=…`: the path keeps the file name and language. */
export function revUri(root: string, commit: string, file: string): vscode.Uri {
  const query = new URLSearchParams({ root, commit }).toString();
  return vscode.Uri.from({ scheme: REV_SCHEME, path: `/${file.replace(/\\/g, "/")}`, query });
}

export function parseRevUri(uri: vscode.Uri): { root: string; commit: string; path: string } {
  const query = new URLSearchParams(uri.query);
  return { root: query.get("root") ?? "", commit: query.get("commit") ?? "", path: uri.path.replace(/^\//, "") };
}

const CACHE_ENTRIES = 200;

export class RevisionFileSystem implements vscode.FileSystemProvider {
  private readonly emitter = new vscode.EventEmitter<vscode.FileChangeEvent[]>();
  readonly onDidChangeFile = this.emitter.event;
  // A file at a commit never changes: cache the last few reads (stat, then readFile).
  private readonly cache = new Map<string, Promise<Uint8Array>>();

  constructor(private readonly daemon: DaemonApi) {}

  private read(uri: vscode.Uri): Promise<Uint8Array> {
    const key = uri.toString();
    let content = this.cache.get(key);
    if (!content) {
      content = this.fetch(uri);
      content.catch(() => this.cache.delete(key));
      this.cache.set(key, content);
      if (this.cache.size > CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    }
    return content;
  }

  private async fetch(uri: vscode.Uri): Promise<Uint8Array> {
    const { root, commit, path: file } = parseRevUri(uri);
    if (!root || !commit) throw vscode.FileSystemError.FileNotFound(uri);
    const result = await this.daemon.request(Method.fileAt, { root, commit, path: file });
    // A file that does not exist at that commit (added or deleted) reads as empty in a diff.
    if (!result.exists) return new Uint8Array();
    return result.encoding === "base64"
      ? new Uint8Array(Buffer.from(result.content ?? "", "base64"))
      : new TextEncoder().encode(result.content ?? "");
  }

  async stat(uri: vscode.Uri): Promise<vscode.FileStat> {
    const content = await this.read(uri);
    return { type: vscode.FileType.File, ctime: 0, mtime: 0, size: content.byteLength, permissions: vscode.FilePermission.Readonly };
  }

  readFile(uri: vscode.Uri): Promise<Uint8Array> {
    return this.read(uri);
  }

  watch(): vscode.Disposable {
    return new vscode.Disposable(() => {});
  }

  readDirectory(): [string, vscode.FileType][] {
    return [];
  }

  createDirectory(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  writeFile(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  delete(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }

  rename(uri: vscode.Uri): void {
    throw vscode.FileSystemError.NoPermissions(uri);
  }
}

export interface ExperimentRef {
  number: number | null;
  status: string;
  metric: number | null | undefined;
  metricName?: string;
}

export function diffTitle(file: string, ref: ExperimentRef): string {
  const number = ref.number === null ? "" : `#${ref.number} `;
  const metric = ref.metric === null || ref.metric === undefined ? "" : ` ${formatMetric(ref.metric)}`;
  return `${path.basename(file)} (${number}${ref.status || "experiment"}${metric})`;
}

/** parent -> commit for one changed file. */
export async function openFileDiff(
  root: string,
  commit: string,
  parent: string,
  change: FileChange,
  ref: ExperimentRef,
): Promise<void> {
  const left = revUri(root, parent, change.old_path ?? change.path);
  const right = revUri(root, commit, change.path);
  await vscode.commands.executeCommand("vscode.diff", left, right, diffTitle(change.path, ref), { preview: true });
}

export function changesTitle(changes: ChangesResult, metricName: string, description: string): string {
  const number = changes.number === null ? changes.commit.slice(0, 7) : `#${changes.number}`;
  const metric =
    changes.metric === null || changes.metric === undefined
      ? ""
      : ` · ${metricName || "metric"} ${formatMetric(changes.metric)}`;
  const text = description ? ` · ${description.length > 60 ? `${description.slice(0, 59)}…` : description}` : "";
  return `Experiment ${number} (${changes.status || "?"})${metric}${text}`;
}

/** All files of one experiment in the multi-file diff editor; one diff per file where it lacks. */
export async function openChanges(
  root: string,
  changes: ChangesResult,
  metricName: string,
  description: string,
  log: vscode.LogOutputChannel,
): Promise<void> {
  const title = changesTitle(changes, metricName, description);
  if (changes.files.length === 0) {
    void vscode.window.showInformationMessage(`${title}: no changed files.`);
    return;
  }
  const resources = changes.files.map((change) => [
    vscode.Uri.file(path.join(root, change.path)),
    change.status === "added" ? undefined : revUri(root, changes.parent, change.old_path ?? change.path),
    change.status === "deleted" ? undefined : revUri(root, changes.commit, change.path),
  ]);
  try {
    await vscode.commands.executeCommand("vscode.changes", title, resources);
    return;
  } catch (error) {
    log.info(`vscode.changes unavailable (${String(error)}); opening one diff per file`);
  }
  const ref = { number: changes.number, status: changes.status ?? "", metric: changes.metric };
  for (const change of changes.files.slice(0, 20)) {
    const left = revUri(root, changes.parent, change.old_path ?? change.path);
    const right = revUri(root, changes.commit, change.path);
    await vscode.commands.executeCommand("vscode.diff", left, right, diffTitle(change.path, ref), {
      preview: false,
    });
  }
}
