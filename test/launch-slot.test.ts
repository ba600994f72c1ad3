/**
 * A node's capacity slots (nodes/launch-slot.ts), without Redis: each path of a launch job frees
 * its slot exactly once, however many of its steps release it, so the node's counts return to
 * zero and never go below. The sequences below are the calls `ServmanNode.process` and its
 * `retire` make on each path; test/launch-attempts.test.ts checks the same on real nodes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { NodeCapacity, type LaunchSlot } from "../nodes/launch-slot.js";

function capacity(limits = { capacity: 2, launchConcurrency: 2 }): { cap: NodeCapacity; changes: () => number } {
  let changes = 0;
  const cap = new NodeCapacity(limits, () => changes++);
  return { cap, changes: () => changes };
}

function take(cap: NodeCapacity): LaunchSlot {
  const slot = cap.take();
  assert.ok(slot, "a slot is free");
  return slot;
}

describe("launch slots", () => {
  it("takes a slot and a launch at once, and refuses when either bound is reached", () => {
    const { cap, changes } = capacity({ capacity: 2, launchConcurrency: 1 });
    const first = take(cap);
    assert.deepEqual([cap.running, cap.launches, cap.open], [1, 1, false]);
    assert.equal(cap.take(), null, "launchConcurrency 1: a second launch waits");
    first.endLaunch();
    const second = take(cap);
    second.endLaunch();
    assert.deepEqual([cap.running, cap.launches, cap.open], [2, 0, false]);
    assert.equal(cap.take(), null, "capacity 2: full");
    first.release();
    assert.equal(cap.open, true);
    assert.equal(changes(), 5, "every change of the counts is reported");
  });

  it("capacity 0 never gives a slot", () => {
    const { cap } = capacity({ capacity: 0, launchConcurrency: 4 });
    assert.equal(cap.take(), null);
    assert.deepEqual([cap.running, cap.launches], [0, 0]);
  });

  it("success: the launch ends, the slot stays with the instance until it retires", () => {
    const { cap } = capacity();
    const slot = take(cap);
    slot.endLaunch();
    assert.deepEqual([cap.running, cap.launches], [1, 0]);
    slot.release(); // retire
    assert.deepEqual([cap.running, cap.launches], [0, 0]);
    assert.equal(slot.released, true);
  });

  it("ready timeout or spawn failure: the instance retires during the job, and the job ends", () => {
    const { cap } = capacity();
    const slot = take(cap);
    slot.release(); // the killed process retires before afterFailure returns
    slot.release(); // a late second retirement path changes nothing
    slot.endLaunch();
    slot.endLaunch();
    assert.deepEqual([cap.running, cap.launches], [0, 0]);
  });

  it("failure before any instance (claim error, logs reset error): catch and finally both release", () => {
    const { cap } = capacity();
    const slot = take(cap);
    slot.release(); // catch: no instance, no retirement
    slot.release(); // finally: no instance
    slot.endLaunch();
    assert.deepEqual([cap.running, cap.launches], [0, 0]);
  });

  it("lock lost or job run twice (claim taken, or launched by the other run): one release", () => {
    const { cap } = capacity();
    const slot = take(cap);
    slot.release(); // the claim came out `taken` or `launched`
    slot.release(); // finally
    slot.endLaunch();
    assert.deepEqual([cap.running, cap.launches], [0, 0]);
  });

  it("drain mid-launch whose registry removal fails: three releases free one slot", () => {
    const { cap } = capacity();
    const slot = take(cap);
    const other = take(cap);
    slot.release(); // the node drains after the claim
    slot.release(); // removeIfNode threw: the catch, still without an instance
    slot.release(); // finally
    slot.endLaunch();
    assert.deepEqual([cap.running, cap.launches], [1, 1], "the other launch keeps its slot");
    other.endLaunch();
    other.release();
    assert.deepEqual([cap.running, cap.launches], [0, 0]);
  });
});
