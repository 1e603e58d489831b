import assert from "node:assert/strict";
import { test } from "node:test";
import type { Config } from "../../extension/protocol";
import {
  AGENT_CHOICES,
  agentChoiceFor,
  buildConfig,
  checkExtraction,
  extractionText,
  metricItems,
  modelItems,
  parseExtraction,
  parseLoopCount,
  scopeItems,
} from "../../extension/wizard";

const detected: Config = {
  metric: { name: "val_bpb", direction: "lower", pattern: "^val_bpb:\\s*([0-9.]+)" },
  run: { command: "python train.py", timeout: 300 },
  scope: { files: ["train.py"], off_limits: ["prepare.py", "model.py"] },
  agent: { kind: "sweep", timeout: 100 },
  decision: { noise_repeats: 2 },
};

test("extraction: a regex, or `$ ` and a shell command", () => {
  assert.deepEqual(parseExtraction("^loss: (\\d+)"), { pattern: "^loss: (\\d+)", extract: null });
  assert.deepEqual(parseExtraction("$ grep '^val' run.log"), { pattern: null, extract: "grep '^val' run.log" });
  assert.equal(extractionText(detected), "^val_bpb:\\s*([0-9.]+)");
  assert.equal(extractionText({ ...detected, metric: { name: "m", direction: "lower", extract: "tail -1 run.log" } }), "$ tail -1 run.log");
});

test("a regex needs exactly one group; Python's named groups are fine", () => {
  assert.equal(checkExtraction("^loss: ([0-9.]+)"), undefined);
  assert.equal(checkExtraction("^loss: (?P<v>[0-9.]+)"), undefined);
  assert.match(checkExtraction("^(loss): ([0-9.]+)")!, /2 groups/);
  assert.match(checkExtraction("loss")!, /0 groups/);
  assert.ok(checkExtraction(""));
  assert.ok(checkExtraction("$ "));
});

test("loop count: empty is unbounded, else a positive integer", () => {
  assert.equal(parseLoopCount(""), null);
  assert.equal(parseLoopCount(" 3 "), 3);
  assert.ok(parseLoopCount("0") instanceof Error);
  assert.ok(parseLoopCount("-1") instanceof Error);
  assert.ok(parseLoopCount("2.5") instanceof Error);
});

test("the config keeps what was detected and takes the answers", () => {
  const config = buildConfig(detected, {
    metric: " val_loss ",
    direction: "higher",
    command: "python train.py --fast",
    extraction: "$ grep val_loss run.log",
    files: ["train.py", "model.py"],
    guard: "",
    agent: AGENT_CHOICES.find((c) => c.id === "claude")!,
  });
  assert.deepEqual(config.metric, { name: "val_loss", direction: "higher", pattern: null, extract: "grep val_loss run.log" });
  assert.deepEqual(config.run, { command: "python train.py --fast", timeout: 300, guard: null });
  assert.deepEqual(config.scope, { files: ["train.py", "model.py"], off_limits: ["prepare.py"] });
  assert.deepEqual(config.agent, { kind: "command", preset: "claude", command: null, timeout: 100 });
  assert.deepEqual(config.decision, { noise_repeats: 2 });
});

test("a custom agent keeps its template; sweep and manual carry no preset", () => {
  const custom = buildConfig(detected, {
    metric: "m", direction: "lower", command: "c", extraction: "(x)", files: ["a"], guard: "pytest",
    agent: AGENT_CHOICES.find((c) => c.id === "custom")!, customCommand: "my-agent {prompt_file}",
  });
  assert.deepEqual(custom.agent, { kind: "command", preset: "custom", command: "my-agent {prompt_file}", timeout: 100 });
  assert.equal(custom.run.guard, "pytest");
  const manual = buildConfig(detected, {
    metric: "m", direction: "lower", command: "c", extraction: "(x)", files: ["a"], guard: "",
    agent: AGENT_CHOICES.find((c) => c.id === "manual")!,
  });
  assert.deepEqual(manual.agent, { kind: "manual", preset: null, command: null, timeout: 100 });
});

test("the detected agent is offered first", () => {
  assert.equal(agentChoiceFor(undefined).id, "sweep");
  assert.equal(agentChoiceFor({ kind: "command", preset: "aider" }).id, "aider");
  assert.equal(agentChoiceFor({ kind: "command", command: "x {prompt_file}" }).id, "custom");
  assert.deepEqual(
    AGENT_CHOICES.map((c) => c.id),
    ["sweep", "manual", "editor", "claude", "codex", "aider", "gemini", "opencode", "custom"],
  );
  assert.equal(agentChoiceFor({ kind: "editor", vendor: "copilot", family: "gpt-4o" }).id, "editor");
});

test("the editor's chat model: vendor and family saved; another agent carries none", () => {
  const editor = AGENT_CHOICES.find((c) => c.id === "editor")!;
  const answers = { metric: "val_bpb", direction: "lower" as const, command: "python train.py", extraction: "^x: (\\S+)", files: ["train.py"], guard: "" };
  const made = buildConfig(detected, { ...answers, agent: editor, model: { vendor: "copilot", family: "gpt-4o" } });
  assert.deepEqual(made.agent, { kind: "editor", timeout: 100, preset: null, command: null, vendor: "copilot", family: "gpt-4o" });
  // Switching back to the sweep drops the model (the daemon refuses vendor with another kind).
  const back = buildConfig(made, { ...answers, agent: AGENT_CHOICES[0]! });
  assert.equal(back.agent?.kind, "sweep");
  assert.ok(!("vendor" in back.agent!) && !("family" in back.agent!));
});

test("model items: one per vendor/family, named, the key as description", () => {
  const items = modelItems([
    { vendor: "copilot", family: "gpt-4o", name: "GPT-4o" },
    { vendor: "copilot", family: "gpt-4o", name: "GPT-4o (preview)" },
    { vendor: "other", family: "small", name: "" },
  ]);
  assert.deepEqual(
    items.map((i) => [i.label, i.description, i.vendor, i.family]),
    [
      ["GPT-4o", "copilot/gpt-4o", "copilot", "gpt-4o"],
      ["small", "other/small", "other", "small"],
    ],
  );
});

test("scope items: selected and suggested first, then the workspace, no duplicates", () => {
  assert.deepEqual(scopeItems(["model.py", "train.py"], ["train.py"], ["z.py", "train.py", "a.py"]), [
    { path: "train.py", picked: true, candidate: true },
    { path: "model.py", picked: false, candidate: true },
    { path: "a.py", picked: false, candidate: false },
    { path: "z.py", picked: false, candidate: false },
  ]);
});

test("renaming the metric renames it in the detected regex", () => {
  const generic: Config = { ...detected, metric: { name: "metric", direction: "lower", pattern: "^\\s*metric\\s*[:=]\\s*([-+0-9.eE]+)" } };
  assert.equal(extractionText(generic, "val_loss"), "^\\s*val_loss\\s*[:=]\\s*([-+0-9.eE]+)");
  assert.equal(extractionText(generic, "val.bpb"), "^\\s*val\\.bpb\\s*[:=]\\s*([-+0-9.eE]+)");
  assert.equal(extractionText(generic, "metric"), generic.metric.pattern);
  assert.equal(extractionText(detected, "loss"), "^loss:\\s*([0-9.]+)");
  const custom: Config = { ...detected, metric: { name: "val_bpb", direction: "lower", pattern: "^bpb=([0-9.]+)" } };
  assert.equal(extractionText(custom, "loss"), "^bpb=([0-9.]+)", "a regex not naming the old metric stays");
});

test("metric quick pick: the detected one first, values and sources said, another name last", () => {
  const metrics = [
    { name: "test_loss", value: 0.52, source: "run.log" },
    { name: "train_loss", value: 0.41, source: "run.log" },
    { name: "eval_step", source: "run.py" },
  ];
  const items = metricItems(metrics, "train_loss");
  assert.deepEqual(items.map((i) => i.name), ["train_loss", "test_loss", "eval_step", null]);
  assert.equal(items[0].description, "last 0.41 · in run.log · likeliest");
  assert.equal(items[2].description, "printed by run.py");
  assert.match(items[3].label, /Another name/);
  assert.deepEqual(metricItems([metrics[0]], "test_loss"), []); // one found: just the name asked
  assert.deepEqual(metricItems(undefined, "x"), []);
});
