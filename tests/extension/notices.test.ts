// Which of the loop's notices the editor shows.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { LoopNotice } from "../../extension/protocol";

import { noticeWanted } from "../../extension/noticeRule";

const notice = (kind: LoopNotice["kind"]): LoopNotice => ({ root: "/r", kind, text: "x", number: 3 });

test("stops and crash streaks always; a new best only when asked; a failure is said elsewhere", () => {
  assert.equal(noticeWanted(notice("stopped"), false), true);
  assert.equal(noticeWanted(notice("crashes"), false), true);
  assert.equal(noticeWanted(notice("new_best"), false), false);
  assert.equal(noticeWanted(notice("new_best"), true), true);
  assert.equal(noticeWanted(notice("failed"), true), false);
});
