import assert from "node:assert/strict";
import { test } from "node:test";
import { contextKeys } from "../../extension/contextKeys";

test("no daemon: nothing runs", () => {
  const keys = contextKeys({ root: "/r", phase: "running", mode: "loop" }, "crashed", false);
  assert.equal(keys["autoresearch.running"], false);
  assert.equal(keys["autoresearch.mode"], "none");
  assert.equal(keys["autoresearch.daemon"], "crashed");
});

test("a running loop: running; paused is running and paused", () => {
  assert.equal(contextKeys({ root: "/r", phase: "running", mode: "loop" }, "ready", true)["autoresearch.running"], true);
  const paused = contextKeys({ root: "/r", phase: "paused", mode: "loop" }, "ready", true);
  assert.equal(paused["autoresearch.running"], true);
  assert.equal(paused["autoresearch.paused"], true);
  assert.equal(contextKeys({ root: "/r", phase: "stopped", mode: "loop" }, "ready", true)["autoresearch.running"], false);
  assert.equal(contextKeys({ root: "/r", phase: "idle", mode: "observer" }, "ready", true)["autoresearch.running"], false);
});

test("Run Experiment only in manual mode's edit phase", () => {
  const manual = (phase: "editing" | "running") =>
    contextKeys({ root: "/r", phase, mode: "loop", agent: "manual" }, "ready", true)["autoresearch.canRunExperiment"];
  assert.equal(manual("editing"), true);
  assert.equal(manual("running"), false);
  assert.equal(
    contextKeys({ root: "/r", phase: "editing", mode: "loop", agent: "sweep" }, "ready", true)["autoresearch.canRunExperiment"],
    false,
  );
});

test("the agent key is the state's agent.kind (Steer the Agent's when clause reads it), empty before a loop", () => {
  assert.equal(contextKeys({ root: "/r", phase: "editing", mode: "loop", agent: "editor" }, "ready", true)["autoresearch.agent"], "editor");
  assert.equal(contextKeys(undefined, "ready", false)["autoresearch.agent"], "");
});
