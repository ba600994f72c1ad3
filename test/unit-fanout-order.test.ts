/**
 * gateway/fanout-order.ts: fanouts put back in their node's order by the `prev` chain, a missing
 * link told once as a gap after the wait, late ones let go, a new run starting a new chain.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { FanoutOrder, GAP_WAIT_MS } from "../gateway/fanout-order.js";

function order() {
  const delivered: number[] = [];
  const gaps: Array<[string, string, number, number]> = [];
  const o = new FanoutOrder((instance, run, after, through) => gaps.push([instance, run, after, through]));
  const take = (seq: number, prev: number, run = "r1", instance = "i1") => o.take(instance, run, seq, prev, () => delivered.push(seq));
  return { o, delivered, gaps, take };
}

describe("FanoutOrder", () => {
  it("delivers a chain in order at once, and holds one that came before its predecessor until it comes", () => {
    const { o, delivered, gaps, take } = order();
    take(3, 1); // the first seen starts the chain, whatever its prev
    take(7, 5); // 5 not here yet: held
    assert.deepEqual(delivered, [3]);
    take(5, 3);
    assert.deepEqual(delivered, [3, 5, 7]);
    assert.equal(o.held, 0);
    assert.deepEqual(gaps, []);
    o.close();
  });

  it("tells a missing link once after the wait, goes on in order, and lets the late one go", async () => {
    const { o, delivered, gaps, take } = order();
    take(1, 0);
    take(4, 2); // 2 missing
    take(6, 4);
    assert.deepEqual(delivered, [1]);
    await new Promise((resolve) => setTimeout(resolve, GAP_WAIT_MS + 200));
    assert.deepEqual(gaps, [["i1", "r1", 1, 2]]);
    assert.deepEqual(delivered, [1, 4, 6]);
    take(2, 1); // late: told as lost already
    take(8, 6);
    assert.deepEqual(delivered, [1, 4, 6, 8]);
    o.close();
  });

  it("a new run of the instance starts a new chain; fanouts of nodes without a chain go at once", () => {
    const { o, delivered, gaps, take } = order();
    take(10, 9);
    take(1, 0, "r2");
    take(2, 1, "r2");
    o.take("i1", undefined, 5, undefined, () => delivered.push(5));
    assert.deepEqual(delivered, [10, 1, 2, 5]);
    assert.deepEqual(gaps, []);
    o.close();
  });

  it("keeps instances apart", () => {
    const { o, delivered, take } = order();
    take(1, 0, "r1", "a");
    take(3, 2, "r1", "b");
    take(2, 1, "r1", "a");
    assert.deepEqual(delivered, [1, 3, 2]);
    o.close();
  });
});
