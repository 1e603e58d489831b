// Lock bookkeeping, pure: glob matching for the badges, and the `files.readonlyInclude` value to
// write while the loop runs and to restore afterwards, with what must be remembered (persisted by
// locks.ts in workspaceState, so a crash is undone on the next activation).

export type ReadonlyInclude = Record<string, boolean>;

/** What was there before the loop locked files. */
export interface SavedLocks {
  /** The workspace folder's own `files.readonlyInclude` before locking (null: not set). */
  previous: ReadonlyInclude | null;
  /** The globs the extension added. */
  added: string[];
  /** Did `.vscode/settings.json` exist before? (If not, and it ends up empty, it is removed.) */
  settingsFileExisted: boolean;
}

/** The user's value with the locked globs set to true. */
export function withLocks(current: ReadonlyInclude | null | undefined, globs: string[]): ReadonlyInclude {
  const value: ReadonlyInclude = { ...(current ?? {}) };
  for (const glob of globs) value[glob] = true;
  return value;
}

/**
 * The value to write back: the current value (keeping what the user changed meanwhile) with each
 * glob the extension added put back as it was before, or removed. `undefined`: unset the setting.
 */
export function withoutLocks(
  current: ReadonlyInclude | null | undefined,
  saved: SavedLocks,
): ReadonlyInclude | undefined {
  const value: ReadonlyInclude = { ...(current ?? {}) };
  for (const glob of saved.added) {
    if (saved.previous && glob in saved.previous) value[glob] = saved.previous[glob]!;
    else delete value[glob];
  }
  if (Object.keys(value).length === 0 && saved.previous === null) return undefined;
  return value;
}

/** Where the saved value lives between activations (workspaceState in the extension). */
export interface LockStore {
  get(): SavedLocks | undefined;
  set(value: SavedLocks | undefined): Promise<void>;
}

export type LockChange =
  | { kind: "none" }
  | { kind: "write"; value: ReadonlyInclude | undefined; removeSettingsFileIfEmpty: boolean };

export class LockBook {
  constructor(private readonly store: LockStore) {}

  get locked(): boolean {
    return this.store.get() !== undefined;
  }

  /** Lock `globs` given the setting's current value; an empty list unlocks. */
  async lock(globs: string[], current: ReadonlyInclude | undefined, settingsFileExists: boolean): Promise<LockChange> {
    if (globs.length === 0) return this.unlock(current);
    const saved = this.store.get();
    const wanted = [...new Set(globs)];
    const same = (a: string[], b: string[]) => a.length === b.length && a.every((g) => b.includes(g));
    if (saved && same(saved.added, wanted) && wanted.every((g) => current?.[g] === true)) {
      return { kind: "none" }; // already locked so: no settings write per experiment
    }
    const base = saved ? withoutLocks(current, saved) : current;
    const next: SavedLocks = {
      previous: base ? { ...base } : null,
      added: wanted,
      settingsFileExisted: saved ? saved.settingsFileExisted : settingsFileExists,
    };
    await this.store.set(next);
    return { kind: "write", value: withLocks(base, next.added), removeSettingsFileIfEmpty: false };
  }

  /** Undo the locks, if any: on stop, on daemon crash, and at activation after a crash. */
  async unlock(current: ReadonlyInclude | undefined): Promise<LockChange> {
    const saved = this.store.get();
    if (!saved) return { kind: "none" };
    await this.store.set(undefined);
    return {
      kind: "write",
      value: withoutLocks(current, saved),
      removeSettingsFileIfEmpty: !saved.settingsFileExisted,
    };
  }
}

/**
 * JSON(C) text without the whitespace outside strings: VS Code's settings writer reformats the
 * file (`{ "a": true }` becomes three lines) while the values stay the same; two texts equal
 * under this are the same settings, comments included.
 */
export function withoutLayout(text: string): string {
  let out = "";
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inString) {
      out += ch;
      if (ch === "\\") out += text[++i] ?? "";
      else if (ch === '"') inString = false;
    } else if (ch === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      out += text.slice(i, end < 0 ? text.length : end).trimEnd();
      i = end < 0 ? text.length : end - 1;
    } else if (ch === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      out += text.slice(i, end < 0 ? text.length : end + 2);
      i = end < 0 ? text.length : end + 1;
    } else if (!/\s/.test(ch)) {
      if (ch === '"') inString = true;
      out += ch;
    }
  }
  return out;
}

/**
 * After unlocking: the settings file's text as it was before the loop when only the layout
 * differs (so that a settings file under git is not left modified), else undefined (keep it).
 */
export function restoredText(before: string | null | undefined, now: string | null | undefined): string | undefined {
  if (typeof before !== "string" || typeof now !== "string" || before === now) return undefined;
  return withoutLayout(before) === withoutLayout(now) ? before : undefined;
}

// ---- globs ------------------------------------------------------------------------------------

function escape(ch: string): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) ? `\\${ch}` : ch;
}

/** A VS Code-style glob (`**`, `*`, `?`, `{a,b}`, `[abc]`) as a RegExp over `/`-separated paths. */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  let depth = 0;
  const g = glob.replace(/^\.\//, "");
  for (let i = 0; i < g.length; i++) {
    const ch = g[i]!;
    if (ch === "*") {
      if (g[i + 1] === "*") {
        const slashAfter = g[i + 2] === "/";
        const atSegmentStart = i === 0 || g[i - 1] === "/";
        if (atSegmentStart && slashAfter) {
          out += "(?:[^/]*(?:/[^/]*)*/)?"; // `**/`: any number of folders, including none
          i += 2;
        } else {
          out += ".*";
          i += 1;
        }
      } else {
        out += "[^/]*";
      }
    } else if (ch === "?") {
      out += "[^/]";
    } else if (ch === "{") {
      depth++;
      out += "(?:";
    } else if (ch === "}" && depth > 0) {
      depth--;
      out += ")";
    } else if (ch === "," && depth > 0) {
      out += "|";
    } else if (ch === "[") {
      const close = g.indexOf("]", i + 1);
      if (close < 0) {
        out += "\\[";
      } else {
        let body = g.slice(i + 1, close);
        if (body.startsWith("!")) body = `^${body.slice(1)}`;
        out += `[${body.replace(/\\/g, "\\\\")}]`;
        i = close;
      }
    } else {
      out += escape(ch);
    }
  }
  return new RegExp(`^${out}$`);
}

export class GlobSet {
  private readonly patterns: RegExp[];

  constructor(readonly globs: readonly string[]) {
    this.patterns = globs.map(globToRegExp);
  }

  matches(relativePath: string): boolean {
    const path = relativePath.replace(/\\/g, "/").replace(/^\.\//, "");
    return this.patterns.some((pattern) => pattern.test(path));
  }
}
