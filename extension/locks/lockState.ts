// Lock bookkeeping, pure: the daemon's concrete paths for the badges (no pattern matching here:
// the daemon expands the scope), and the `files.readonlyInclude` value to write while the loop
// runs and to restore afterwards, with what must be remembered (persisted by locks.ts in
// workspaceState, so a crash is undone on the next activation).

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

// ---- concrete paths ---------------------------------------------------------------------------

/** The daemon's repo-relative paths (already expanded from the scope): membership, no globs. */
export class PathSet {
  private readonly set: ReadonlySet<string>;

  constructor(readonly paths: readonly string[]) {
    this.set = new Set(paths);
  }

  get size(): number {
    return this.set.size;
  }

  has(relativePath: string): boolean {
    return this.set.has(relativePath.replace(/\\/g, "/"));
  }
}

/**
 * A `files.readonlyInclude` glob matching exactly `path`. VS Code's globs have no escape
 * character, so each metacharacter goes alone in brackets (`[[]`, `[]]`, `[*]`...), and so does a
 * space at either end (VS Code trims the pattern).
 */
export function literalGlob(path: string): string {
  const body = path.replace(/[[\]{}*?\\]/g, (ch) => `[${ch}]`);
  return body.replace(/^\s+|\s+$/g, (spaces) => spaces.replace(/\s/g, (ch) => `[${ch}]`));
}
