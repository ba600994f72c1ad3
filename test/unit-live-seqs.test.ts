/**
 * gateway/live-seqs.ts: what a session passed on live, per instance and run; held fanouts count
 * only once their gate let them go.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LiveSeqs } from "../gateway/live-seqs.js";

describe("LiveSeqs", () => {
  it("keeps the newest seq of the current run per instance; a new run starts over", () => {
    const live = new LiveSeqs();
    assert.equal(live.newest("i1", "r1"), 0);
    live.note("i1", "r1", 5, false);
    live.note("i1", "r1", 3, false);
    live.note("i2", "r1", 9, false);
    assert.equal(live.newest("i1", "r1"), 5);
    assert.equal(live.newest("i1", "r2"), 0, "another run: nothing of it seen");
    live.note("i1", "r2", 1, false);
    assert.deepEqual([live.newest("i1", "r2"), live.newest("i1", "r1"), live.newest("i2", "r1")], [1, 0, 9]);
  });

  it("a held fanout is live only once its gate let it go (the next gate is installed)", () => {
    const live = new LiveSeqs();
    live.note("i1", "r1", 2, false);
    live.note("i1", "r1", 7, true);
    assert.equal(live.newest("i1", "r1"), 2, "held behind the replay under way");
    live.released();
    assert.equal(live.newest("i1", "r1"), 7);
  });
});
