// The contract between the extension and the real daemon: `<python> -m autoresearch serve`
// started as the extension starts it, spoken to over vscode-jsonrpc from Node, every answer
// checked against the daemon's own JSON schema (the same one protocol.test.ts holds protocol.ts to).
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { createMessageConnection, StreamMessageReader, StreamMessageWriter, type MessageConnection } from "vscode-jsonrpc/node";
import { Method, type ParamsOf, type RequestMethod, type ResultOf } from "../../extension/protocol";
import { python, pythonEnv, repoRoot } from "./helpers";

const SERVER = join(repoRoot(), "server", "autoresearch", "server.py");

type Schema = { requests: Record<string, { params: Node; result: Node }>; components: Record<string, Node> };
type Node = {
  $ref?: string;
  type?: string;
  items?: Node;
  additionalProperties?: Node | boolean;
  enum?: unknown[];
  anyOf?: Node[];
  properties?: Record<string, Node>;
  required?: string[];
};

/** Problems of `value` against a schema node (empty: it conforms). */
function validate(schema: Schema, node: Node, value: unknown, at = "$"): string[] {
  if (node.$ref) return validate(schema, schema.components[node.$ref.replace("#/$defs/", "")]!, value, at);
  if (node.anyOf) {
    return node.anyOf.some((option) => validate(schema, option, value, at).length === 0)
      ? []
      : [`${at}: ${JSON.stringify(value)} matches none of ${JSON.stringify(node.anyOf)}`];
  }
  if (node.enum) return node.enum.includes(value) ? [] : [`${at}: ${JSON.stringify(value)} not in ${JSON.stringify(node.enum)}`];
  switch (node.type) {
    case "string":
    case "boolean":
      return typeof value === node.type ? [] : [`${at}: expected ${node.type}, got ${JSON.stringify(value)}`];
    case "number":
      return typeof value === "number" ? [] : [`${at}: expected number, got ${JSON.stringify(value)}`];
    case "integer":
      return Number.isInteger(value) ? [] : [`${at}: expected integer, got ${JSON.stringify(value)}`];
    case "null":
      return value === null ? [] : [`${at}: expected null`];
    case "array":
      if (!Array.isArray(value)) return [`${at}: expected array`];
      return value.flatMap((item, i) => validate(schema, node.items ?? {}, item, `${at}[${i}]`));
    case "object": {
      if (typeof value !== "object" || value === null || Array.isArray(value)) return [`${at}: expected object`];
      const record = value as Record<string, unknown>;
      const problems: string[] = [];
      for (const key of node.required ?? []) if (!(key in record)) problems.push(`${at}: missing ${key}`);
      for (const [key, item] of Object.entries(record)) {
        const property = node.properties?.[key];
        if (property) problems.push(...validate(schema, property, item, `${at}.${key}`));
        else if (typeof node.additionalProperties === "object") {
          problems.push(...validate(schema, node.additionalProperties, item, `${at}.${key}`));
        } else if (node.properties) problems.push(`${at}: unknown field ${key}`);
      }
      return problems;
    }
  }
  return [];
}

function git(cwd: string, ...args: string[]): string {
  const run = spawnSync("git", args, { cwd, encoding: "utf-8" });
  assert.equal(run.status, 0, `git ${args.join(" ")}: ${run.stderr}`);
  return run.stdout.trim();
}

/** A repository whose results.tsv was written by another tool: three experiments on three commits. */
function sampleRepo(): { root: string; commits: string[] } {
  const root = mkdtempSync(join(tmpdir(), "ar-contract-"));
  git(root, "init", "-q", "-b", "main");
  git(root, "config", "user.email", "test@example.com");
  git(root, "config", "user.name", "test");
  writeFileSync(join(root, ".gitignore"), "results.tsv\nrun.log\n.autoresearch/\n");
  const commits: string[] = [];
  for (const lr of ["0.01", "0.02", "0.005"]) {
    writeFileSync(join(root, "train.py"), `LR = ${lr}\nprint("val_bpb: 1.0")\n`);
    git(root, "add", "-A");
    git(root, "commit", "-q", "-m", `lr ${lr}`);
    commits.push(git(root, "rev-parse", "HEAD"));
  }
  const rows = [
    ["commit", "val_bpb", "memory_gb", "status", "description"],
    [commits[0]!.slice(0, 7), "1.000000", "1.0", "keep", "baseline"],
    [commits[1]!.slice(0, 7), "1.100000", "1.0", "discard", "double LR"],
    [commits[2]!.slice(0, 7), "0.900000", "1.0", "keep", "halve LR"],
  ];
  writeFileSync(join(root, "results.tsv"), rows.map((r) => r.join("\t")).join("\n") + "\n");
  return { root, commits };
}

let daemon: ChildProcessWithoutNullStreams | undefined;
let connection: MessageConnection | undefined;
let schema: Schema;
let repo: { root: string; commits: string[] };
let stderr = "";

async function request<M extends RequestMethod>(method: M, params: ParamsOf<M>): Promise<ResultOf<M>> {
  const result = await connection!.sendRequest<ResultOf<M>>(method, params);
  const problems = validate(schema, schema.requests[method]!.result, result);
  assert.deepEqual(problems, [], `${method} answered outside its schema: ${JSON.stringify(result)}`);
  return result;
}

before(async () => {
  assert.ok(existsSync(SERVER), `${SERVER} is missing: the contract needs the daemon`);
  const code = "import json; from autoresearch.protocol import schema; print(json.dumps(schema()))";
  const exported = spawnSync(python(), ["-c", code], { env: pythonEnv(), encoding: "utf-8" });
  assert.equal(exported.status, 0, exported.stderr);
  schema = JSON.parse(exported.stdout) as Schema;
  repo = sampleRepo();
  daemon = spawn(python(), ["-m", "autoresearch", "serve"], {
    cwd: repo.root,
    env: { ...pythonEnv(), AUTORESEARCH_FAKE_GPU: join(repo.root, "no-such-gpu.json") },
  });
  daemon.stderr.on("data", (data: Buffer) => (stderr += data.toString()));
  connection = createMessageConnection(new StreamMessageReader(daemon.stdout), new StreamMessageWriter(daemon.stdin));
  connection.listen();
});

after(async () => {
  if (connection) {
    try {
      await Promise.race([connection.sendRequest("shutdown"), new Promise((r) => setTimeout(r, 2000))]);
      await connection.sendNotification("exit");
    } catch {
      // already gone
    }
    connection.dispose();
  }
  if (daemon && daemon.exitCode === null) {
    await Promise.race([new Promise((r) => daemon!.once("exit", r)), new Promise((r) => setTimeout(r, 3000))]);
    if (daemon.exitCode === null) daemon.kill("SIGKILL");
  }
  if (repo) rmSync(repo.root, { recursive: true, force: true });
});

test("initialize: the daemon answers as a language server", async () => {
  const result = await connection!.sendRequest<{ capabilities: object; serverInfo?: { name: string } }>("initialize", {
    processId: process.pid,
    rootUri: `file://${repo.root}`,
    capabilities: {},
    workspaceFolders: [{ uri: `file://${repo.root}`, name: "repo" }],
    initializationOptions: {},
  });
  assert.equal(typeof result.capabilities, "object", stderr);
  await connection!.sendNotification("initialized", {});
});

test("state: a repository with another tool's results.tsv is observed", async () => {
  const state = await request(Method.state, { root: repo.root });
  assert.equal(state.root, repo.root);
  assert.equal(state.mode, "observer", JSON.stringify(state));
  assert.notEqual(state.phase, "failed");
  const observed = (state.sessions ?? []).reduce((sum, s) => sum + s.total, 0);
  assert.ok(observed >= 3 || state.counts?.keep === 2, JSON.stringify(state));
});

test("detect: a config to prefill the wizard, and direction left to ask", async () => {
  const detected = await request(Method.detect, { root: repo.root });
  assert.ok(Array.isArray(detected.candidates));
  assert.ok(detected.ask.some((setting) => setting.includes("direction")), JSON.stringify(detected.ask));
  assert.ok(detected.candidates.includes("train.py"), JSON.stringify(detected.candidates));
});

test("experiments: pages newest first and oldest first, with the total", async () => {
  const newest = await request(Method.experiments, { root: repo.root, offset: 0, limit: 2, newest_first: true });
  assert.equal(newest.total, 3);
  assert.deepEqual(newest.items.map((e) => e.description), ["halve LR", "double LR"]);
  const oldest = await request(Method.experiments, { root: repo.root, offset: 1, limit: 5, newest_first: false });
  assert.deepEqual(oldest.items.map((e) => e.status), ["discard", "keep"]);
  assert.equal(oldest.items[0]!.metric, 1.1);
  assert.equal(oldest.items[0]!.commit, repo.commits[1]);
});

test("changes and fileAt: one experiment's diff, read at both commits", async () => {
  const changes = await request(Method.changes, { root: repo.root, commit: repo.commits[2]! });
  assert.equal(changes.parent, repo.commits[1]);
  assert.deepEqual(changes.files.map((f) => [f.path, f.status, f.additions, f.deletions]), [["train.py", "modified", 1, 1]]);
  const before = await request(Method.fileAt, { root: repo.root, commit: changes.parent, path: "train.py" });
  const afterEdit = await request(Method.fileAt, { root: repo.root, commit: changes.commit, path: "train.py" });
  assert.match(before.content ?? "", /LR = 0.02/);
  assert.match(afterEdit.content ?? "", /LR = 0.005/);
  const missing = await request(Method.fileAt, { root: repo.root, commit: changes.commit, path: "nope.py" });
  assert.equal(missing.exists, false);
});

test("gpus: no GPU source reads as unavailable with a message", async () => {
  const gpus = await request(Method.gpus, { root: repo.root });
  assert.equal(gpus.available, false);
  assert.ok(gpus.message);
});
