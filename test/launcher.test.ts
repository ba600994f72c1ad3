/**
 * The Launcher (docs/launch-queue.md#direct-enqueue-vs-launcher) and a launch enqueued straight
 * into BullMQ, as another backend would, on one redis-server and on a Redis Cluster (where the
 * task's queue is named `{task}`).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Queue, QueueEvents } from "bullmq";
import { Redis } from "ioredis";
import { Launcher } from "../src/launcher/launcher.js";
import { type ServmanError } from "../src/errors.js";
import { startCluster, type TestCluster } from "./helpers/cluster.js";
import { descendants, eventually } from "./helpers/processes.js";
import { sharedClusterPids, startTopology, TOPOLOGIES, type TopologyRedis } from "./helpers/redis-topology.js";

for (const topology of TOPOLOGIES)
  describe(`Launcher (${topology})`, () => {
    let redis: TopologyRedis;
    let cluster: TestCluster;
    let launcher: Launcher;

    before(async () => {
      redis = await startTopology(topology);
      cluster = await startCluster(redis);
      launcher = new Launcher({ redis: redis.url, prefix: "t" });
    });

    after(async () => {
      await launcher?.close();
      await cluster?.close();
      await redis?.release();
      assert.deepEqual(descendants(process.pid, sharedClusterPids()), []);
    });

    it("launches, gets, lists and stops", async () => {
      const result = await launcher.launch("echo", { args: { round: 1 }, instance: "from-backend" });
      assert.deepEqual(result, { instance: "from-backend", node: cluster.nodes[0].id });
      const record = await launcher.get("from-backend");
      assert.ok(record);
      assert.equal(record.task, "echo");
      assert.equal(record.state, "ready");
      assert.equal(record.owner, null, "a backend's launch has no owning client");
      assert.ok(record.pid > 0);
      assert.deepEqual(
        (await launcher.list()).map((r) => r.instance),
        ["from-backend"],
      );
      await launcher.stop("from-backend");
      assert.equal(await launcher.get("from-backend"), null);
      assert.deepEqual(await launcher.list(), []);
    });

    it("lets a client join an instance a backend launched", async () => {
      const { instance } = await launcher.launch("echo");
      const client = await cluster.client();
      await client.join(instance);
      const got = new Promise((resolve) => client.handle("echo", (_i, data) => resolve(data)));
      client.send(instance, "echo", "hi");
      assert.equal(await got, "hi");
      await launcher.stop(instance);
    });

    it("rejects with coded errors", async () => {
      await assert.rejects(launcher.launch("nope"), (e: ServmanError) => e.code === "unknown_task");
      await assert.rejects(launcher.launch("echo", { instance: "no spaces" }), (e: ServmanError) => e.code === "bad_request");
      await assert.rejects(launcher.stop("ghost"), (e: ServmanError) => e.code === "unknown_instance");
      await assert.rejects(launcher.launch("echo", { args: { failStart: true } }), (e: ServmanError) => e.code === "launch_failed");
    });

    it("accepts a launch enqueued directly with BullMQ, as documented", async () => {
      // As docs/launch-queue.md tells another backend: prefix `t:launch`, the queue `echo` (`{echo}` on a cluster).
      const name = topology === "cluster" ? "{echo}" : "echo";
      assert.equal(name, redis.keys.queueName("echo"));
      const connection = redis.connect({ blocking: true });
      const queue = new Queue(name, { connection, prefix: "t:launch" });
      const eventsConnection = redis.connect({ blocking: true });
      const events = new QueueEvents(name, { connection: eventsConnection, prefix: "t:launch" });
      await events.waitUntilReady();
      try {
        const job = await queue.add("launch", { instance: "direct-1", task: "echo", args: { from: "python" } });
        const result = await job.waitUntilFinished(events, 20_000);
        assert.deepEqual(result, { instance: "direct-1", node: cluster.nodes[0].id });
        assert.equal((await launcher.get("direct-1"))?.state, "ready");

        // The same id again: refused by the registry, never a second process.
        const again = await queue.add("launch", { instance: "direct-1", task: "echo" });
        await assert.rejects(again.waitUntilFinished(events, 20_000), /already_exists/);
        assert.equal(descendants().filter((p) => p.cmd.includes("echo-service")).length, 1);

        const bad = await queue.add("launch", { instance: "has:colon", task: "echo" });
        await assert.rejects(bad.waitUntilFinished(events, 20_000), /bad_request/);
        const empty = await queue.add("launch", null);
        await assert.rejects(empty.waitUntilFinished(events, 20_000), /bad_request/);
        await launcher.stop("direct-1");
      } finally {
        await events.close();
        await queue.close();
        connection.disconnect();
        eventsConnection.disconnect();
      }
    });

    it("a launch whose reservation timed out while Redis paused writes leaves no record behind", async () => {
      // The registry's master: on a cluster, the one serving the `{t}` slot.
      const admin = redis.redisCluster ? new Redis((await redis.redisCluster.masterOf("{t}")).port, "127.0.0.1") : new Redis(redis.url);
      try {
        // Reads go on (the task is offered), writes wait: the reservation times out on our side
        // after 5 s, then Redis carries it out when the pause ends.
        const pausedUntil = Date.now() + 6_500;
        await admin.call("CLIENT", "PAUSE", "6500", "WRITE");
        await assert.rejects(launcher.launch("echo", { instance: "paused-reserve" }), (e: ServmanError) => e.code === "unavailable");
        // Once writes run again (a write of our own waits for that), the reservation ran, and so did its cancellation.
        await admin.set("{t}:test-probe", "1");
        assert.ok(Date.now() >= pausedUntil - 100, "the pause is over");
        await eventually(async () => (await launcher.get("paused-reserve")) === null, "no reservation left", 5_000);
        assert.deepEqual(await launcher.list(), []);
        const { instance } = await launcher.launch("echo", { instance: "paused-reserve" });
        assert.equal(instance, "paused-reserve", "the id is free again");
        await launcher.stop(instance);
      } finally {
        await admin.call("CLIENT", "UNPAUSE").catch(() => {});
        admin.disconnect();
      }
    });

    it("rejects pending calls with unavailable once closed", async () => {
      const other = new Launcher({ redis: redis.url, prefix: "t" });
      const pending = other.launch("echo", { args: { readyDelayMs: 500 } });
      const outcome = pending.then(
        () => null,
        (e: unknown) => e,
      );
      await eventually(async () => (await other.list()).length === 1, "the launch to be reserved");
      await other.close();
      await other.close();
      assert.equal(((await outcome) as ServmanError).code, "unavailable");
      await assert.rejects(other.launch("echo"), (e: ServmanError) => e.code === "unavailable");
      // The instance itself did launch; clean it up.
      await eventually(async () => (await launcher.list()).some((r) => r.state === "ready"), "the orphaned launch to finish");
      for (const r of await launcher.list()) await launcher.stop(r.instance);
    });
  });
