/** Client messages held across a restart (nodes/held-messages.ts): order, bounds, drop counts. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HeldMessages } from "../nodes/held-messages.js";

const message = (client: string, n: number, data = "") => JSON.stringify({ type: "message", client, action: "a", data: `${n}${data}` });

describe("HeldMessages", () => {
  it("hands back what it held, in order, once", () => {
    const held = new HeldMessages(16 * 1024 * 1024);
    const sent = Array.from({ length: 5 }, (_, i) => message(i % 2 ? "c1" : "c2", i));
    for (const payload of sent) held.hold(payload);
    const out: string[] = [];
    assert.deepEqual(
      held.release((p) => out.push(p)),
      new Map(),
    );
    assert.deepEqual(out, sent);
    const again: string[] = [];
    held.release((p) => again.push(p));
    assert.deepEqual(again, [], "released messages are not kept");
  });

  it("past 10 000 messages, counts each sender's dropped messages", () => {
    const held = new HeldMessages(16 * 1024 * 1024);
    for (let i = 0; i < 10_000; i++) held.hold(message("fill", i));
    held.hold(message("a", 1));
    held.hold(message("b", 1));
    held.hold(message("a", 2));
    let count = 0;
    const dropped = held.release(() => count++);
    assert.equal(count, 10_000);
    assert.deepEqual([...dropped].sort(), [
      ["a", 2],
      ["b", 1],
    ]);
    assert.deepEqual(
      held.release(() => {}),
      new Map(),
      "the counts start again after a release",
    );
  });

  it("past its bound (the task's maxQueuedBytes, here 16 MiB) of text, drops what does not fit, and takes small messages again after a release", () => {
    const held = new HeldMessages(16 * 1024 * 1024);
    const big = message("big", 0, "x".repeat(16 * 1024 * 1024 - 200));
    held.hold(big);
    held.hold(message("late", 1, "y".repeat(200)));
    held.hold(message("tiny", 2));
    const out: string[] = [];
    const dropped = held.release((p) => out.push(p));
    assert.deepEqual(
      out.map((p) => (JSON.parse(p) as { client: string }).client),
      ["big", "tiny"],
      "a smaller message still fits",
    );
    assert.deepEqual([...dropped], [["late", 1]]);
    held.hold(message("late", 3, "y".repeat(200)));
    const next: string[] = [];
    held.release((p) => next.push(p));
    assert.equal(next.length, 1, "the text bound starts again after a release");
  });
});
