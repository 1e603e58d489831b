import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileLockStore, LOCK_FILE } from "../../extension/locks/lockFile";
import { LockBook, type SavedLocks } from "../../extension/locks/lockState";

/** One window's workspaceState (each window, or each editor's storage, has its own). */
function memento() {
  let value: SavedLocks | undefined;
  return { get: () => value, set: async (v: SavedLocks | undefined) => void (value = v ? structuredClone(v) : undefined) };
}

function repo(withState = true): string {
  const root = mkdtempSync(join(tmpdir(), "ar-locks-"));
  if (withState) mkdirSync(join(root, ".autoresearch"));
  return root;
}

test("a window with other storage undoes the locks another window left (a detached loop outlived it)", async () => {
  const root = repo();
  const first = new LockBook(fileLockStore(() => root, memento()));
  await first.lock(["train.py"], undefined, false);
  assert.ok(existsSync(join(root, LOCK_FILE)), "the record is in the repository's .autoresearch/");
  // The first window is gone without unlocking; the next one has empty storage of its own. It
  // finds the record: the leftover glob is the loop's, not taken for the user's own.
  const second = new LockBook(fileLockStore(() => root, memento()));
  assert.ok(second.locked);
  assert.deepEqual(await second.unlock({ "train.py": true }), { kind: "write", value: undefined, removeSettingsFileIfEmpty: true });
  assert.ok(!existsSync(join(root, LOCK_FILE)), "the record goes with the locks");
  assert.ok(!second.locked);
});

test("a lock record an older version kept in workspaceState is still undone, and then kept in the file", async () => {
  const root = repo();
  const old = memento();
  await old.set({ previous: { "data/**": true }, added: ["train.py"], settingsFileExisted: true });
  const book = new LockBook(fileLockStore(() => root, old));
  assert.ok(book.locked);
  assert.deepEqual(await book.lock(["b.py"], { "data/**": true, "train.py": true }, true), {
    kind: "write",
    value: { "data/**": true, "b.py": true },
    removeSettingsFileIfEmpty: false,
  });
  assert.equal(old.get(), undefined, "one record only");
  assert.ok(existsSync(join(root, LOCK_FILE)));
});

test("no loop state folder (or no folder): the record stays in workspaceState, nothing is created", async () => {
  const root = repo(false);
  const store = memento();
  const book = new LockBook(fileLockStore(() => root, store));
  await book.lock(["train.py"], undefined, false);
  assert.ok(!existsSync(join(root, ".autoresearch")), "no .autoresearch/ made by the editor");
  assert.deepEqual(store.get()?.added, ["train.py"]);
  const none = memento();
  await new LockBook(fileLockStore(() => undefined, none)).lock(["a.py"], undefined, false);
  assert.deepEqual(none.get()?.added, ["a.py"]);
});
