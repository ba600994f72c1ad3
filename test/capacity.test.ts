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
  const fx = useCluster({ nodes: [{ id: "n1", capacity: 2, tasks: ["echo"] }, { id: "n2", capacity: 3, tasks: ["echo"] }] });

  it("fills both nodes to their capacity, refuses the next launch, and takes it once a slot frees", async () => {
    const client = await fx.cluster.raw();
    const replies = await Promise.all(Array.from({ length: 5 }, () => client.request({ type: "launch", task: "echo" })));
    assert.deepEqual(replies.map((r) => r.type), Array(5).fill("launched"));
    const perNode = (node: string) => replies.filter((r) => r.node === node).length;
    assert.deepEqual([perNode("n1"), perNode("n2")], [2, 3]);
    assert.deepEqual(fx.cluster.nodes.map((n) => n.running), [2, 3]);

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
    assert.deepEqual(fx.cluster.nodes.map((n) => n.running), [2, 3]);
    assert.equal(descendants().filter((p) => p.cmd.includes("echo-service")).length, 5);

    for (const r of [...replies.filter((r) => r !== freed), placed]) await client.request({ type: "stop", instance: r.instance });
    await eventually(() => fx.cluster.nodes.every((n) => n.running === 0), "every slot to free");
  });

  it("shows running and capacity in the node list", async () => {
    const nodes = await fx.cluster.gateways[0]!["requester"].nodes.list();
    assert.deepEqual(nodes.map((n) => [n.id, n.capacity]), [["n1", 2], ["n2", 3]]);
  });
});
