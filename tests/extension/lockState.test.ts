import assert from "node:assert/strict";
import { test } from "node:test";
import { LockBook, literalGlob, PathSet, restoredText, withoutLayout, type SavedLocks } from "../../extension/locks/lockState";

function memoryStore() {
  let value: SavedLocks | undefined;
  return { get: () => value, set: async (v: SavedLocks | undefined) => void (value = v ? structuredClone(v) : undefined) };
}

test("badges compare concrete paths: no pattern is matched in the editor", () => {
  const set = new PathSet(["data/x.csv", "src/a.py", "train.py"]);
  assert.ok(set.has("train.py") && set.has("data/x.csv") && set.has("src\\a.py"));
  // The three cases, as the daemon expands them: `data/` is its files, `src/*.py` leaves
  // src/a/b.py writable, `**/*.py` includes train.py at the root.
  assert.ok(!set.has("data") && !set.has("data/") && !set.has("src/a/b.py"));
  assert.ok(!new PathSet(["src/*.py"]).has("src/a.py")); // a pattern would be a path, literally
  assert.equal(new PathSet([]).size, 0);
});

test("each locked path becomes a literal readonlyInclude glob", () => {
  assert.equal(literalGlob("train.py"), "train.py");
  assert.equal(literalGlob("data/x y.csv"), "data/x y.csv");
  assert.equal(literalGlob("a[1]/b{c,d}*?.py"), "a[[]1[]]/b[{]c,d[}][*][?].py");
  assert.equal(literalGlob(" pad "), "[ ]pad[ ]");
});

test("locking saves the user's value and restoring puts it back exactly", async () => {
  const book = new LockBook(memoryStore());
  const user = { "vendor/**": true, "train.py": false };
  const locked = await book.lock(["train.py", "model.py"], user, true);
  assert.deepEqual(locked, {
    kind: "write",
    value: { "vendor/**": true, "train.py": true, "model.py": true },
    removeSettingsFileIfEmpty: false,
  });
  assert.ok(book.locked);
  const restored = await book.unlock({ "vendor/**": true, "train.py": true, "model.py": true });
  assert.deepEqual(restored, { kind: "write", value: { "vendor/**": true, "train.py": false }, removeSettingsFileIfEmpty: false });
  assert.ok(!book.locked);
  assert.deepEqual(await book.unlock({}), { kind: "none" });
});

test("no previous value: the setting is unset again and an empty settings file may go", async () => {
  const book = new LockBook(memoryStore());
  await book.lock(["train.py"], undefined, false);
  const restored = await book.unlock({ "train.py": true });
  assert.deepEqual(restored, { kind: "write", value: undefined, removeSettingsFileIfEmpty: true });
});

test("what the user added while locked survives the restore", async () => {
  const book = new LockBook(memoryStore());
  await book.lock(["train.py"], undefined, true);
  const restored = await book.unlock({ "train.py": true, "docs/**": true });
  assert.deepEqual(restored, { kind: "write", value: { "docs/**": true }, removeSettingsFileIfEmpty: false });
});

test("a new lock set replaces the previous one without losing the user's value", async () => {
  const book = new LockBook(memoryStore());
  await book.lock(["a.py"], { "x/**": true }, true);
  const second = await book.lock(["b.py"], { "x/**": true, "a.py": true }, true);
  assert.deepEqual(second, { kind: "write", value: { "x/**": true, "b.py": true }, removeSettingsFileIfEmpty: false });
  assert.deepEqual(await book.unlock({ "x/**": true, "b.py": true }), {
    kind: "write",
    value: { "x/**": true },
    removeSettingsFileIfEmpty: false,
  });
});

test("an empty lock list unlocks (manual mode's edit phase)", async () => {
  const book = new LockBook(memoryStore());
  await book.lock(["train.py"], undefined, true);
  assert.deepEqual(await book.lock([], { "train.py": true }, true), {
    kind: "write",
    value: undefined,
    removeSettingsFileIfEmpty: false,
  });
});

test("after a crash the saved value is still there for the next activation", async () => {
  const store = memoryStore();
  await new LockBook(store).lock(["train.py"], { "keep/**": true }, true);
  // A new window: a new LockBook over the same workspaceState.
  const next = new LockBook(store);
  assert.ok(next.locked);
  assert.deepEqual(await next.unlock({ "keep/**": true, "train.py": true }), {
    kind: "write",
    value: { "keep/**": true },
    removeSettingsFileIfEmpty: false,
  });
});

test("the same locks again write nothing", async () => {
  const book = new LockBook(memoryStore());
  await book.lock(["train.py"], undefined, true);
  assert.deepEqual(await book.lock(["train.py"], { "train.py": true }, true), { kind: "none" });
  // ...unless the setting lost them meanwhile.
  assert.equal((await book.lock(["train.py"], {}, true)).kind, "write");
});

test("after unlocking, the settings file gets its own layout back when only the layout changed", () => {
  const before = '{\n  // mine\n  "files.readonlyInclude": { "data/**": true },\n  "editor.tabSize": 3\n}\n';
  const rewritten = '{\n  // mine\n  "files.readonlyInclude": {\n    "data/**": true\n  },\n  "editor.tabSize": 3\n}\n';
  assert.equal(withoutLayout(before), withoutLayout(rewritten));
  assert.equal(restoredText(before, rewritten), before);
  assert.equal(restoredText(before, before), undefined, "nothing to do");
  // A value changed meanwhile (by the user): the file is left as it is.
  assert.equal(restoredText(before, rewritten.replace("3", "4")), undefined);
  // Whitespace inside strings and comments counts.
  assert.notEqual(withoutLayout('{"a": "x y"}'), withoutLayout('{"a": "xy"}'));
  assert.notEqual(withoutLayout('{"a": "x\\" y"}'), withoutLayout('{"a": "x\\"y"}'));
  assert.notEqual(withoutLayout("// a b\n{}"), withoutLayout("// ab\n{}"));
  assert.equal(withoutLayout('/* c */ { "a" : 1 }  '), '/* c */{"a":1}');
  // No file before, or none now: nothing to restore.
  assert.equal(restoredText(null, "{}"), undefined);
  assert.equal(restoredText(before, undefined), undefined);
});
