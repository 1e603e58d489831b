// File locks while the loop runs: the daemon sends concrete paths (it expands the scope); each
// goes into the workspace's files.readonlyInclude as a literal glob (the user's value saved in
// .autoresearch/ (lockFile.ts) and restored on stop, on a daemon crash and at the next activation
// after a crash, in any window), and lock / shield badges on exactly those locked / off-limits files.
import { existsSync, readFileSync, readdirSync, renameSync, rmdirSync, unlinkSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import * as vscode from "vscode";
import { excludeCreated, removeExcludes } from "./gitExclude";
import { fileLockStore } from "./lockFile";
import { LockBook, literalGlob, PathSet, restoredText, type LockChange, type ReadonlyInclude, type SavedLocks } from "./lockState";
import type { LocksChanged } from "../protocol";

const STATE_KEY = "autoresearch.savedReadonlyInclude";
// The settings file's text before the first lock: put back verbatim when only the layout changed.
const TEXT_KEY = "autoresearch.savedSettingsText";
export const LOCK_BADGE = "🔒";
export const OFF_LIMITS_BADGE = "🛡";

export class Locks implements vscode.FileDecorationProvider, vscode.Disposable {
  private locked = new PathSet([]);
  private offLimits = new PathSet([]);
  private reason = "";
  private readonly book: LockBook;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly emitter = new vscode.EventEmitter<vscode.Uri | vscode.Uri[] | undefined>();
  readonly onDidChangeFileDecorations = this.emitter.event;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires after the paths or the setting changed (for the e2e dump). */
  readonly onDidChange = this.changed.event;

  constructor(
    private readonly memento: vscode.Memento,
    private readonly folder: () => vscode.WorkspaceFolder | undefined,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.book = new LockBook(
      fileLockStore(() => folder()?.uri.fsPath, {
        get: () => memento.get<SavedLocks>(STATE_KEY),
        set: async (value) => memento.update(STATE_KEY, value),
      }),
    );
  }

  get lockedPaths(): readonly string[] {
    return this.locked.paths;
  }

  get offLimitsPaths(): readonly string[] {
    return this.offLimits.paths;
  }

  /** A locksChanged notification: badges now, the setting in order. */
  apply(event: LocksChanged): Promise<void> {
    this.locked = new PathSet(event.locked);
    this.offLimits = new PathSet(event.off_limits);
    this.reason = event.reason ?? "";
    this.emitter.fire(undefined);
    this.changed.fire();
    const enabled = vscode.workspace.getConfiguration("autoresearch").get<boolean>("locks.readonly", true);
    const globs = enabled ? event.locked.map(literalGlob) : [];
    return this.enqueue(async () => {
      if (!this.book.locked && globs.length) {
        await this.memento.update(TEXT_KEY, this.settingsText() ?? null);
        // A settings file made only for the locks stays out of `git status` (before it exists).
        const folder = this.folder();
        if (folder && !this.settingsFileExists()) {
          await excludeCreated(folder.uri.fsPath, path.join(".vscode", "settings.json")).catch((error: unknown) =>
            this.log.warn(`git exclude: ${String(error)}`),
          );
        }
      }
      return this.book.lock(globs, this.current(), this.settingsFileExists());
    });
  }

  /** Loop stopped, daemon crashed, extension deactivating, or activation after a crash. */
  release(why: string): Promise<void> {
    if (this.locked.size) {
      this.locked = new PathSet([]);
      this.emitter.fire(undefined);
      this.changed.fire();
    }
    // Queued like every lock, so a lock still waiting in the queue is undone too (unlock is
    // a no-op when nothing is saved).
    return this.enqueue(async () => {
      if (this.book.locked) this.log.info(`Unlocking files (${why})`);
      return this.book.unlock(this.current());
    });
  }

  private enqueue(work: () => Promise<LockChange>): Promise<void> {
    const next = this.queue.then(async () => {
      const change = await work();
      if (change.kind === "write") await this.write(change.value, change.removeSettingsFileIfEmpty);
    });
    this.queue = next.catch((error) => this.log.error(`files.readonlyInclude: ${String(error)}`));
    return this.queue.then(() => this.changed.fire());
  }

  private target(): vscode.ConfigurationTarget {
    return vscode.workspace.workspaceFile ? vscode.ConfigurationTarget.WorkspaceFolder : vscode.ConfigurationTarget.Workspace;
  }

  current(): ReadonlyInclude | undefined {
    const inspected = vscode.workspace
      .getConfiguration("files", this.folder()?.uri)
      .inspect<ReadonlyInclude>("readonlyInclude");
    return this.target() === vscode.ConfigurationTarget.WorkspaceFolder
      ? inspected?.workspaceFolderValue
      : inspected?.workspaceValue;
  }

  private settingsPath(): string | undefined {
    const folder = this.folder();
    return folder ? path.join(folder.uri.fsPath, ".vscode", "settings.json") : undefined;
  }

  private settingsText(): string | undefined {
    const file = this.settingsPath();
    try {
      return file && existsSync(file) ? readFileSync(file, "utf-8") : undefined;
    } catch {
      return undefined;
    }
  }

  /** Unlocked: VS Code rewrote the file in its own layout; the same settings get their text back. */
  private restoreText(): void {
    const before = this.memento.get<string | null>(TEXT_KEY);
    if (before === undefined) return;
    void this.memento.update(TEXT_KEY, undefined);
    const file = this.settingsPath();
    const text = restoredText(before, this.settingsText());
    if (!file || text === undefined) return;
    try {
      const tmp = `${file}.autoresearch.tmp`;
      writeFileSync(tmp, text);
      renameSync(tmp, file);
    } catch (error) {
      this.log.warn(`Could not restore the layout of ${file}: ${String(error)}`);
    }
  }

  private settingsFileExists(): boolean {
    const file = this.settingsPath();
    return !!file && existsSync(file);
  }

  private async write(value: ReadonlyInclude | undefined, removeIfEmpty: boolean): Promise<void> {
    const config = vscode.workspace.getConfiguration("files", this.folder()?.uri);
    await config.update("readonlyInclude", value, this.target());
    this.log.info(`files.readonlyInclude = ${JSON.stringify(value ?? null)}`);
    if (this.book.locked) return;
    this.restoreText();
    const file = this.settingsPath();
    if (removeIfEmpty && file && existsSync(file)) {
      // The settings file did not exist before the loop: leave no empty one behind.
      try {
        if (readFileSync(file, "utf-8").replace(/\/\/.*$/gm, "").replace(/\s/g, "") === "{}") {
          unlinkSync(file);
          const dir = path.dirname(file);
          if (readdirSync(dir).length === 0) rmdirSync(dir);
        }
      } catch (error) {
        this.log.warn(`Could not tidy ${file}: ${String(error)}`);
      }
    }
    // After the file is gone: a file the user filled meanwhile shows up in git again, as theirs.
    const folder = this.folder();
    if (folder) await removeExcludes(folder.uri.fsPath).catch((error: unknown) => this.log.warn(`git exclude: ${String(error)}`));
  }

  provideFileDecoration(uri: vscode.Uri): vscode.FileDecoration | undefined {
    if (uri.scheme !== "file") return undefined;
    const folder = this.folder();
    if (!folder) return undefined;
    const relative = path.relative(folder.uri.fsPath, uri.fsPath);
    if (!relative || relative.startsWith("..")) return undefined;
    if (this.locked.has(relative)) {
      return {
        badge: LOCK_BADGE,
        tooltip: `Locked by Autoresearch: ${this.reason || "the experiment loop is editing this file"}`,
      };
    }
    if (this.offLimits.has(relative)) {
      return { badge: OFF_LIMITS_BADGE, tooltip: "Off-limits: the experiment loop never edits this file" };
    }
    return undefined;
  }

  dispose(): void {
    this.emitter.dispose();
    this.changed.dispose();
  }
}
