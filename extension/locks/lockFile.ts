// Where the saved locks live: in the repository's .autoresearch/ (the loop's own state folder, out
// of git), so that whichever window picks up a loop that outlived another one (a detached loop)
// finds them and undoes them, whatever that window's own storage. A record in workspaceState (an
// older version's, or a folder with no loop state yet) is read and written there instead. No vscode import.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import type { LockStore, SavedLocks } from "./lockState";

export const LOCK_FILE = join(".autoresearch", "editor-locks.json");

/** `folder()`'s .autoresearch/editor-locks.json when that folder exists, else `fallback`. */
export function fileLockStore(folder: () => string | undefined, fallback: LockStore): LockStore {
  const file = () => {
    const root = folder();
    const path = root === undefined ? undefined : join(root, LOCK_FILE);
    return path !== undefined && existsSync(dirname(path)) ? path : undefined;
  };
  return {
    get: () => {
      const path = file();
      if (path !== undefined && existsSync(path)) {
        try {
          return JSON.parse(readFileSync(path, "utf-8")) as SavedLocks;
        } catch {
          // Unreadable: as if none (the next lock writes it anew).
        }
      }
      return fallback.get();
    },
    set: async (value) => {
      const path = file();
      if (path === undefined) return fallback.set(value);
      if (value === undefined) rmSync(path, { force: true });
      else {
        const tmp = `${path}.tmp`;
        writeFileSync(tmp, JSON.stringify(value));
        renameSync(tmp, path);
      }
      await fallback.set(undefined); // one record only: the file's
    },
  };
}
