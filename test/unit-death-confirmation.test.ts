/**
 * Confirming a death (src/registry/liveness.ts `DeathConfirmation`, used by NodeReaper and the
 * gateways' SessionKeeper) on a clock the test sets: a key missing once is only a suspect.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { DeathConfirmation } from "../src/registry/liveness.js";

describe("DeathConfirmation", () => {
  it("a missing key is confirmed only once it has been missing for confirmMs", () => {
    const deaths = new DeathConfirmation(2000);
    assert.deepEqual(deaths.confirmed(["n1"], 10_000), [], "first seen missing: a suspect");
    assert.deepEqual(deaths.confirmed(["n1"], 11_999), []);
    assert.deepEqual(deaths.confirmed(["n1"], 12_000), ["n1"]);
    assert.deepEqual(deaths.confirmed(["n1"], 13_000), ["n1"], "still confirmed until forgotten");
  });

  it("a key that came back (a Redis pause, a late heartbeat) clears the suspicion", () => {
    const deaths = new DeathConfirmation(2000);
    deaths.confirmed(["n1", "n2"], 0);
    assert.deepEqual(deaths.confirmed(["n2"], 1000), [], "n1 is back");
    assert.deepEqual(deaths.confirmed(["n1", "n2"], 2000), ["n2"], "n1 missing again: its time starts over");
    assert.deepEqual(deaths.confirmed(["n1", "n2"], 4000).sort(), ["n1", "n2"]);
  });

  it("forget: a death dealt with is timed again from its next sighting", () => {
    const deaths = new DeathConfirmation(500);
    deaths.confirmed(["g1"], 0);
    assert.deepEqual(deaths.confirmed(["g1"], 500), ["g1"]);
    deaths.forget("g1");
    assert.deepEqual(deaths.confirmed(["g1"], 600), []);
    assert.deepEqual(deaths.confirmed(["g1"], 1100), ["g1"]);
  });

  it("nothing missing confirms nothing and forgets every suspect", () => {
    const deaths = new DeathConfirmation(0);
    assert.deepEqual(deaths.confirmed(["a"], 0), [], "even with confirmMs 0, a death needs two sightings");
    assert.deepEqual(deaths.confirmed([], 5), []);
    assert.deepEqual(deaths.confirmed(["a"], 10), []);
  });
});
