/** Capacity: a node never holds more live instances than it is configured for, across nodes. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { descendants, eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

/** True while the launch job of `instance` (echo task) waits in the queue, or is handed back or tried. */
async function queued(url: string, instance: string): Promise<boolean> {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  const queue = new Queue("echo", { connection, prefix: "t:launch" });
  try {
    return (await queue.getJobs(["active", "wait", "delayed", "prioritized"])).some((job) => job.data?.instance === instance);
  } finally {
    await queue.close();
    connection.disconnect();
  }
}

describe("capacity across two nodes", () => {
  const fx = useCluster({
    nodes: [
      { id: "n1", capacity: 2, tasks: ["echo"] },
      { id: "n2", capacity: 3, tasks: ["echo"] },
    ],
  });

  it("fills both nodes to their capacity, refuses the next launch, and takes it once a slot frees", async () => {
    const client = await fx.cluster.raw();
    const replies = await Promise.all(Array.from({ length: 5 }, () => client.request({ type: "launch", task: "echo" })));
    assert.deepEqual(
      replies.map((r) => r.type),
      Array(5).fill("launched"),
    );
    const perNode = (node: string) => replies.filter((r) => r.node === node).length;
    assert.deepEqual([perNode("n1"), perNode("n2")], [2, 3]);
    assert.deepEqual(
      fx.cluster.nodes.map((n) => n.running),
      [2, 3],
    );

    const refused = await client.request({ type: "launch", task: "echo", options: { timeoutMs: 500 } });
    assert.equal(refused.code, "no_capacity");

    // A launch waiting in the queue is placed as soon as an instance ends.
    const waiting = client.request({ type: "launch", task: "echo", instance: "waiting-1", options: { timeoutMs: 10_000 } });
    await eventually(() => queued(fx.redis.url, "waiting-1"), "the launch to wait in the queue");
    const freed = replies.find((r) => r.node === "n1")!;
    assert.equal((await client.request({ type: "stop", instance: freed.instance })).type, "stopped");
    const placed = await waiting;
    assert.equal(placed.type, "launched");
    assert.equal(placed.node, "n1");
    assert.deepEqual(
      fx.cluster.nodes.map((n) => n.running),
      [2, 3],
    );
    assert.equal(descendants().filter((p) => p.cmd.includes("echo-service")).length, 5);

    for (const r of [...replies.filter((r) => r !== freed), placed]) await client.request({ type: "stop", instance: r.instance });
    await eventually(() => fx.cluster.nodes.every((n) => n.running === 0), "every slot to free");
  });

  it("shows running and capacity in the node list", async () => {
    const nodes = await fx.cluster.gateways[0]["requester"].nodes.list();
    assert.deepEqual(
      nodes.map((n) => [n.id, n.capacity]),
      [
        ["n1", 2],
        ["n2", 3],
      ],
    );
  });
});

/**
 * Every way a launch ends frees its capacity slot exactly once (nodes/launch-slot.ts): after the
 * failures, the node still takes exactly its capacity, neither less (a leaked slot) nor more (a
 * slot freed twice). test/launch-attempts.test.ts checks retries, a lost lock and a dead node.
 */
describe("a launch's slot on every path", () => {
  const fx = useCluster({ nodes: [{ id: "p1", capacity: 3 }] });
  const node = () => fx.cluster.nodes[0];
  const slotsFree = () => eventually(() => node().running === 0, "every slot to free");

  it("is held while the instance lives and freed when it stops", async () => {
    const client = await fx.cluster.raw();
    const launched = await client.request({ type: "launch", task: "echo" });
    assert.equal(node().running, 1);
    await client.request({ type: "stop", instance: launched.instance });
    await slotsFree();
  });

  it("is freed by a ready timeout and by a process failing before ready", async () => {
    const client = await fx.cluster.raw();
    const timedOut = await client.request({ type: "launch", task: "slow-echo", args: { neverReady: true } });
    assert.equal(timedOut.code, "timeout");
    await slotsFree();
    const failed = await client.request({ type: "launch", task: "echo", args: { failStart: true } });
    assert.equal(failed.code, "launch_failed");
    await slotsFree();
  });

  it("after all that, the node still takes exactly its capacity", async () => {
    const client = await fx.cluster.raw();
    const replies = await Promise.all(Array.from({ length: 3 }, () => client.request({ type: "launch", task: "echo" })));
    assert.deepEqual(
      replies.map((r) => r.type),
      ["launched", "launched", "launched"],
    );
    const refused = await client.request({ type: "launch", task: "echo", options: { timeoutMs: 500 } });
    assert.equal(refused.code, "no_capacity");
    for (const r of replies) await client.request({ type: "stop", instance: r.instance });
    await slotsFree();
  });

  it("is freed when the node drains during the launch", async () => {
    const client = await fx.cluster.raw();
    const reply = client.request({ type: "launch", task: "echo", instance: "drained-1", args: { readyDelayMs: 60_000 } }, 30_000);
    await eventually(async () => (await fx.redis.client.hget("{t}:instance:drained-1", "node")) === "p1", "the claim");
    assert.equal(node().running, 1);
    const drained = node().drain(2000);
    assert.equal((await reply).code, "launch_failed");
    await drained;
    assert.equal(node().running, 0);
  });
});
