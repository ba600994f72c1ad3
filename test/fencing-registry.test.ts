/**
 * The registry scripts that fence a node (docs/architecture.md#fencing), against a real Redis:
 * the heartbeat, the reaper's decision, and the instance writes that check the incarnation.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Keys } from "../src/keys.js";
import { InstanceRegistry } from "../src/registry/instance-registry.js";
import { NodeRegistry, type NodeRecord } from "../src/registry/node-registry.js";
import { startRedis } from "./helpers/redis-server.js";

const record = (id: string): NodeRecord => ({
  id,
  host: "h",
  pid: 1,
  tasks: ["echo"],
  capacity: 1,
  running: 0,
  started: 0,
  seen: 0,
  draining: false,
  invalidOutput: 0,
  internalErrors: 0,
  badBusMessages: 0,
  droppedForBackpressure: 0,
  warm: {},
  fenced: 0,
});
const launch = { task: "echo", owner: null, ownerUser: "u", options: {}, args: {} };

describe("fencing in the registry", () => {
  it("a node declared dead cannot refresh, claim, update or delete; a reaper spares its new registration's records", async () => {
    const redis = await startRedis();
    try {
      const keys = new Keys("t");
      const nodes = new NodeRegistry(redis.client, keys);
      const instances = new InstanceRegistry(redis.client, keys);

      assert.equal(await nodes.heartbeat(record("n1"), "A", "register"), "current");
      assert.equal(await nodes.heartbeat(record("n1"), "A", "refresh"), "current");
      assert.equal(await nodes.claimReap("n1"), false, "a node whose record exists is not declared dead");
      assert.equal(await instances.reserve("i1", { ...launch, token: "T" }), "reserved");
      assert.equal(await instances.claim("i1", "n1", "B", "T", launch), "fenced", "not the registration the record names");
      assert.equal(await instances.claim("i1", "n1", "A", "T", launch), "claimed");
      assert.equal(await redis.client.hget("{t}:instance:i1", "incarnation"), "A");
      assert.equal(await instances.update("i1", "n1", "A", { state: "ready" }), "written");

      // The record expires (a pause) and a reaper declares n1 dead.
      await redis.client.del("{t}:node:n1");
      assert.equal(await nodes.claimReap("n1"), true);
      assert.equal(await nodes.heartbeat(record("n1"), "A", "refresh"), "fenced");
      assert.equal(await redis.client.exists("{t}:node:n1"), 0, "a fenced heartbeat writes nothing");
      assert.equal(await instances.claim("i2", "n1", "A", "", launch), "fenced");

      // n1 registers again as B, and (say) the relaunch of i1 lands on it: the reaper, still
      // reaping A, and A's retirement leave it alone.
      assert.equal(await nodes.heartbeat(record("n1"), "B", "rejoin"), "current");
      await redis.client.hset("{t}:instance:i1", "incarnation", "B");
      assert.equal(await instances.update("i1", "n1", "A", { state: "stopping" }), "not_ours");
      assert.equal(await instances.removeIfNode("i1", "n1", "u", "A"), false);
      assert.equal(await instances.removeIfNode("i1", "n1", "u"), false, "a reaper spares the current registration's record");
      assert.equal(await redis.client.hget("{t}:instance:i1", "state"), "ready");
      assert.deepEqual(await redis.client.smembers("{t}:node-instances:n1"), ["i1"]);
      assert.equal(await instances.removeIfNode("i1", "n1", "u", "B"), true);

      // A record of the dead registration goes with the reaper.
      await instances.reserve("i3", { ...launch, token: "T3" });
      assert.equal(await instances.claim("i3", "n1", "B", "T3", launch), "claimed");
      await redis.client.hset("{t}:instance:i3", "incarnation", "A");
      assert.equal(await instances.removeIfNode("i3", "n1", "u"), true);
      assert.deepEqual(await redis.client.smembers("{t}:user-instances:u"), []);

      // Another live process under the same id: a fenced node does not take it back.
      assert.equal(await nodes.heartbeat(record("n1"), "C", "register"), "current");
      assert.equal(await nodes.heartbeat(record("n1"), "B", "refresh"), "fenced");
      assert.equal(await nodes.heartbeat(record("n1"), "D", "rejoin"), "taken");
      assert.equal(await redis.client.hget("{t}:node:n1", "incarnation"), "C");
    } finally {
      await redis.stop();
    }
  });
});
