/**
 * A task's `attempts`: a launch whose process exits before `ready` or misses `readyTimeoutMs` is
 * tried again, on another node when there is one, and fails with the last error once `attempts`
 * tries failed. Also: a launch job that outlives its BullMQ lock, or whose node is SIGKILLed
 * mid-launch, never starts a second process, and its requester hears exactly one answer.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { loadConfig } from "../src/config/load-config.js";
import type { ServmanConfig } from "../src/config/options.js";
import { startServer } from "./helpers/cli.js";
import { ECHO_SERVICE, ROOT, TestCluster, writeConfig, type RawClient } from "./helpers/cluster.js";
import { alive, descendants, eventually } from "./helpers/processes.js";
import { startRedis, type TestRedis } from "./helpers/redis-server.js";

describe("launch attempts", () => {
  let redis: TestRedis;
  let dir: string;
  const clusters: TestCluster[] = [];

  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), "servman-attempts-"));
  });
  after(async () => {
    await Promise.allSettled(clusters.map((c) => c.close()));
    await redis.stop();
    assert.deepEqual(descendants(), [], "no child process is left");
  });

  function configFile(prefix: string, tasks: Record<string, unknown>, node: Record<string, unknown> = {}): string {
    return writeConfig({ redis: redis.url, prefix, gateway: { host: "127.0.0.1", port: 0 }, node: { capacity: 5, shutdownDeadlineMs: 1000, ...node }, tasks });
  }
  function config(file: string): ServmanConfig {
    return loadConfig({ config: file }, { PATH: process.env.PATH });
  }
  /** A cluster (nodes, gateways) of its own configuration, closed after the file. */
  function cluster(file: string): TestCluster {
    const c = new TestCluster(config(file));
    clusters.push(c);
    return c;
  }
  /** Two nodes and a gateway of one configuration; a client of that gateway. */
  async function twoNodes(prefix: string, tasks: Record<string, unknown>, ids: [string, string], node: Record<string, unknown> = {}): Promise<RawClient> {
    const c = cluster(configFile(prefix, tasks, node));
    for (const id of ids) await c.addNode({ id });
    await c.addGateway();
    return c.raw();
  }
  /** Capacity slots taken on each node of the clusters of `prefix`. */
  function slots(prefix: string): number[] {
    return clusters.filter((c) => c.config.prefix === prefix).flatMap((c) => c.nodes.map((n) => n.running));
  }
  /** Every slot of `prefix` but `expected` is free again (none leaked, none counted twice). */
  async function slotsSettle(prefix: string, expected: number): Promise<void> {
    await eventually(() => slots(prefix).reduce((a, b) => a + b, 0) === expected, `${prefix}: ${expected} slot(s) taken`);
    assert.ok(
      slots(prefix).every((n) => n >= 0),
      `no negative count: ${slots(prefix).join(",")}`,
    );
  }
  /** The processes started so far, as `<pid> <node>` lines written by the echo fixture. */
  function starts(log: string): string[] {
    return existsSync(log)
      ? readFileSync(log, "utf8")
          .trim()
          .split("\n")
          .filter((l) => l !== "")
      : [];
  }
  async function claimedBy(prefix: string, instance: string, node: string): Promise<void> {
    await eventually(async () => (await redis.client.hget(`{${prefix}}:instance:${instance}`, "node")) === node, `${instance} to be claimed by ${node}`, 20_000);
  }

  /**
   * Node a (with the gateway) fails the task once `failFile` exists, node b does not. Node b
   * joins only once a has claimed the launch, so a is always tried first.
   */
  async function failOnA(prefix: string, attempts: number, instance: string): Promise<{ reply: Record<string, any>; log: string; retriedMs: number }> {
    const failFile = join(dir, `${prefix}.fail`);
    const task = (node: string, env: Record<string, string>) => ({ flaky: { module: ECHO_SERVICE, attempts, env: { ECHO_NODE: node, ...env } } });
    const a = cluster(configFile(prefix, task("a", { ECHO_FAIL_WHEN: failFile })));
    const b = cluster(configFile(prefix, task("b", {})));
    await a.addNode({ id: "a" });
    await a.addGateway();
    const client = await a.raw();
    const log = join(dir, `${prefix}.starts`);
    const reply = client.request({ type: "launch", task: "flaky", instance, args: { startLog: log } }, 60_000);
    await claimedBy(prefix, instance, "a");
    await b.addNode({ id: "b" });
    const failedAt = Date.now();
    writeFileSync(failFile, "");
    const answer = await reply;
    return { reply: answer, log, retriedMs: Date.now() - failedAt };
  }

  it("attempts 2: a launch that fails on one node succeeds on the other", async (t) => {
    const { reply, log, retriedMs } = await failOnA("a2", 2, "flaky-1");
    assert.equal(reply.type, "launched", JSON.stringify(reply));
    assert.equal(reply.node, "b");
    assert.deepEqual(
      starts(log).map((l) => l.split(" ")[1]),
      ["a", "b"],
    );
    assert.equal(await redis.client.hget("{a2}:instance:flaky-1", "state"), "ready");
    assert.equal(await redis.client.hget("{a2}:instance:flaky-1", "tries"), "1");
    t.diagnostic(`retried launch: ${retriedMs} ms from the failure on a to launched on b`);
    await slotsSettle("a2", 1);
  });

  it("attempts 1: the same launch fails, and node b never tries it", async () => {
    const { reply, log } = await failOnA("a1", 1, "flaky-2");
    assert.equal(reply.type, "error");
    assert.equal(reply.code, "launch_failed");
    assert.doesNotMatch(reply.message, /gave up after/);
    assert.deepEqual(
      starts(log).map((l) => l.split(" ")[1]),
      ["a"],
    );
    assert.equal(await redis.client.exists("{a1}:instance:flaky-2"), 0, "the id is free again");
    await slotsSettle("a1", 0);
  });

  it("attempts 3, always failing: launch_failed after exactly 3 processes, on both nodes", async () => {
    const client = await twoNodes("a3", { broken: { module: ECHO_SERVICE, attempts: 3 } }, ["n1", "n2"]);
    const log = join(dir, "a3.starts");
    const reply = await client.request({ type: "launch", task: "broken", instance: "broken-1", args: { failStart: true, startLog: log } }, 60_000);
    assert.equal(reply.type, "error");
    assert.equal(reply.code, "launch_failed");
    assert.match(reply.message, /exited with code 1 before it was ready/);
    // Each node first, then either again (both have failed it by then).
    assert.match(reply.message, /gave up after 3 attempts, on (n1, n2|n2, n1), n[12]\)$/);
    assert.equal(starts(log).length, 3);
    assert.equal(await redis.client.exists("{a3}:instance:broken-1"), 0);
    assertNoMore(client, "broken-1");
    await slotsSettle("a3", 0);
  });

  it("readyTimeoutMs missed: retried, then timeout naming the attempts", async () => {
    const client = await twoNodes("at", { mute: { module: ECHO_SERVICE, attempts: 2, readyTimeoutMs: 800 } }, ["m1", "m2"]);
    const log = join(dir, "at.starts");
    const reply = await client.request({ type: "launch", task: "mute", instance: "mute-1", args: { neverReady: true, startLog: log } }, 60_000);
    assert.equal(reply.type, "error");
    assert.equal(reply.code, "timeout");
    assert.match(reply.message, /did not become ready within 800 ms \(gave up after 2 attempts, on (m1, m2|m2, m1)\)$/);
    assert.equal(starts(log).length, 2);
    assert.equal(await redis.client.exists("{at}:instance:mute-1"), 0);
    await slotsSettle("at", 0);
  });

  it("a launch outliving its BullMQ lock (event loop blocked past it) starts one process and answers once", async () => {
    const client = await twoNodes("lk", { slow: { module: ECHO_SERVICE } }, ["l1", "l2"], { lockDurationMs: 1000 });
    const log = join(dir, "lk.starts");
    const reply = client.request({ type: "launch", task: "slow", instance: "slow-1", args: { readyDelayMs: 8000, startLog: log } }, 60_000);
    await eventually(async () => ["l1", "l2"].includes((await redis.client.hget("{lk}:instance:slow-1", "node")) ?? ""), "the claim", 20_000);
    // Every node lives in this process: nothing renews the lock while the loop is blocked, and
    // BullMQ's stalled check (every lockDurationMs) has seconds left to hand the job out again.
    const blockedUntil = Date.now() + 2500;
    while (Date.now() < blockedUntil);
    const launched = await reply;
    assert.equal(launched.type, "launched", JSON.stringify(launched));
    assert.deepEqual(await jobsSettled("slow", "lk"), [1], "BullMQ ran the job a second time");
    assert.equal(starts(log).length, 1, "one process");
    assertNoMore(client, "slow-1");
    assert.deepEqual(slots("lk").sort(), [0, 1], "the run that waited for the other freed its slot");
    assert.equal((await client.request({ type: "stop", instance: "slow-1" })).type, "stopped");
    await slotsSettle("lk", 0);
  });

  it("a node SIGKILLed mid-launch: the job runs again elsewhere and takes the dead node's claim over", async (t) => {
    const file = configFile("sk", { slow: { module: ECHO_SERVICE } }, { lockDurationMs: 1000 });
    const doomed = await startServer(["--config", file, "--id", "doomed"], { bin: join(ROOT, "bin/servman-node.js") });
    try {
      const c = cluster(file);
      await c.addGateway();
      const client = await c.raw();
      const log = join(dir, "sk.starts");
      const reply = client.request({ type: "launch", task: "slow", instance: "slow-2", args: { readyDelayMs: 3000, startLog: log } }, 90_000);
      await claimedBy("sk", "slow-2", "doomed");
      await eventually(() => starts(log).length === 1, "the first process to start");
      const firstPid = Number(starts(log)[0].split(" ")[0]);
      await c.addNode({ id: "survivor" });
      const killedAt = Date.now();
      doomed.child.kill("SIGKILL");
      const launched = await reply;
      assert.equal(launched.type, "launched", JSON.stringify(launched));
      assert.equal(launched.node, "survivor");
      t.diagnostic(`launched on the survivor ${Date.now() - killedAt} ms after the SIGKILL`);
      await eventually(() => !alive(firstPid), "the dead node's process to exit by itself");
      assert.deepEqual(await jobsSettled("slow", "sk"), [1], "BullMQ ran the job again after the dead node's lock ran out");
      assert.equal(starts(log).length, 2, "one process on each node, never two at once");
      assertNoMore(client, "slow-2");
      assert.equal((await client.request({ type: "stop", instance: "slow-2" })).type, "stopped");
      await slotsSettle("sk", 0);
    } finally {
      await doomed.stop("SIGKILL");
    }
  });

  /** No second answer for the launch arrived (nothing is pending: its job has settled). */
  function assertNoMore(client: RawClient, instance: string): void {
    assert.deepEqual(
      client.frames.filter((f) => f.instance === instance || f.type === "error"),
      [],
    );
  }

  /**
   * Waits until no job of `task` is waiting, delayed or active (every run of it is over), and
   * returns how many times BullMQ found each finished job stalled (and so ran it again).
   */
  async function jobsSettled(task: string, prefix: string): Promise<number[]> {
    const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
    const queue = new Queue(task, { connection, prefix: `${prefix}:launch` });
    try {
      await eventually(
        async () => {
          const counts = await queue.getJobCounts("active", "wait", "delayed", "prioritized");
          return Object.values(counts).every((n) => n === 0);
        },
        `the ${task} jobs to settle`,
        30_000,
      );
      return (await queue.getJobs(["completed", "failed"])).map((job) => job.stalledCounter);
    } finally {
      await queue.close();
      connection.disconnect();
    }
  }
});
