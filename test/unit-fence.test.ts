/**
 * NodeFence: what an unconfirmed node holds, in what order it lets it go once confirmed, and what
 * it discards once declared dead (nodes/fence.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeFence, SAFE_MS } from "../nodes/fence.js";

function fence() {
  const out: string[] = [];
  let checks = 0;
  const f = new NodeFence({
    publish: (channel, payload) => void out.push(`${channel} ${payload}`),
    publishCounted: (channel, payload) => (out.push(`${channel} ${payload} counted`), Promise.resolve(1)),
    check: () => void checks++,
    ready: () => true,
  });
  return { f, out, checks: () => checks };
}

describe("node fence", () => {
  it("holds output and input until confirmed, asks for one check, then lets them go in order", async () => {
    const { f, out, checks } = fence();
    assert.equal(f.safe, false, "a node that never heard back from Redis is not confirmed");
    f.publish(f.incarnation, "a", "1");
    const counted = f.publishCounted(f.incarnation, "a", "2");
    f.defer(1, () => out.push("in 3"));
    assert.deepEqual([...out], []);
    assert.equal(checks(), 1);
    f.confirm(NodeFence.now());
    assert.equal(await counted, 1);
    assert.deepEqual(out, ["a 1", "a 2 counted", "in 3"]);
    // Confirmed: straight through.
    f.publish(f.incarnation, "a", "4");
    f.defer(1, () => out.push("in 5"));
    assert.deepEqual(out.slice(3), ["a 4", "in 5"]);
  });

  it("a confirmation from a heartbeat sent too long ago, on either clock, lets nothing go, and asks again", () => {
    for (const sent of [
      { wall: Date.now() - SAFE_MS - 1, mono: performance.now() },
      { wall: Date.now(), mono: performance.now() - SAFE_MS - 1 },
    ]) {
      const { f, out, checks } = fence();
      f.publish(f.incarnation, "a", "1");
      f.confirm(sent);
      assert.deepEqual([...out], []);
      assert.equal(checks(), 2);
      f.confirm(NodeFence.now());
      assert.deepEqual(out, ["a 1"]);
    }
  });

  it("declared dead: what was held is discarded, and the old incarnation's output is dropped for good", async () => {
    const { f, out } = fence();
    const stale = f.incarnation;
    f.publish(stale, "a", "1");
    const counted = f.publishCounted(stale, "a", "2");
    f.defer(1, () => out.push("in"));
    f.renew();
    await assert.rejects(counted);
    assert.notEqual(f.incarnation, stale);
    assert.equal(f.count, 1);
    f.confirm(NodeFence.now());
    f.publish(stale, "a", "3");
    await assert.rejects(f.publishCounted(stale, "a", "4"));
    f.publish(f.incarnation, "a", "5");
    assert.deepEqual(out, ["a 5"]);
  });
});
