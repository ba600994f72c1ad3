/**
 * A node that stops answering for a while and then carries on (SIGSTOP / SIGCONT, standing in
 * for a long GC or swap pause, a frozen VM, a partition from Redis). Past its death (record TTL
 * plus the reaper's confirmation) the cluster declares its instances lost and relaunches those
 * with `relaunch: true` elsewhere; when it resumes it must fence itself: kill the stale
 * processes, deliver nothing more from them, and register again with its capacity free.
 * A pause shorter than that disturbs nothing.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ECHO_SERVICE, ROOT, TestCluster, writeConfig, type RawClient } from "./helpers/cluster.js";
import { startServer, type ServerProcess } from "./helpers/cli.js";
import { alive, descendants, eventually } from "./helpers/processes.js";
import { startRedis, type TestRedis } from "./helpers/redis-server.js";
import { loadConfig } from "../src/config/load-config.js";
import { Launcher } from "../src/launcher/launcher.js";

interface Setup {
  redis: TestRedis;
  cluster: TestCluster;
  n1: ServerProcess;
  a: RawClient;
  b: RawClient;
  plain: string;
  pids: { keep: number; plain: number };
}

/** Two gateways, node n1 as a child process (so it can be stopped), keep and plain on it, joined. */
async function setUp(): Promise<Setup> {
  const redis = await startRedis();
  const file = writeConfig({
    redis: redis.url,
    prefix: "t",
    gateway: { host: "127.0.0.1", port: 0 },
    node: { capacity: 6, shutdownDeadlineMs: 1000 },
    tasks: { keep: { module: ECHO_SERVICE, relaunch: true }, plain: { module: ECHO_SERVICE } },
  });
  const cluster = new TestCluster(loadConfig({ config: file }, { PATH: process.env.PATH }));
  const n1 = await startServer(["--config", file, "--id", "n1"], { bin: join(ROOT, "bin/servman-node.js") });
  await cluster.addGateway();
  await cluster.addGateway();
  const a = await cluster.raw(0);
  const b = await cluster.raw(1);
  const keep = await a.request({ type: "launch", task: "keep", instance: "keep" });
  const plainLaunch = await b.request({ type: "launch", task: "plain" });
  assert.deepEqual([keep.node, plainLaunch.node], ["n1", "n1"]);
  const plain = plainLaunch.instance as string;
  for (const client of [a, b]) {
    assert.equal((await client.request({ type: "join", instance: "keep" })).type, "joined");
    assert.equal((await client.request({ type: "join", instance: plain })).type, "joined");
  }
  const pids = { keep: await whoami(a, "keep"), plain: await whoami(a, plain) };
  await cluster.addNode({ id: "n2" });
  return { redis, cluster, n1, a, b, plain, pids };
}

/** The pid of the process answering `whoami` on `instance`. */
async function whoami(client: RawClient, instance: string): Promise<number> {
  client.send({ type: "send", instance, action: "whoami" });
  return (await client.next((f) => f.action === "whoami" && f.instance === instance)).data.pid as number;
}

/** Every frame `client` received so far that matches, taken out of its buffer. */
function take(client: RawClient, match: (f: Record<string, any>) => boolean): Record<string, any>[] {
  const found = client.frames.filter(match);
  for (const f of found) client.frames.splice(client.frames.indexOf(f), 1);
  return found;
}

async function tearDown(s: Setup | undefined, n1Stopped: () => boolean): Promise<void> {
  if (!s) return;
  if (n1Stopped()) s.n1.child.kill("SIGCONT");
  await s.cluster.close();
  await s.n1.stop("SIGTERM");
  await s.redis.stop();
}

describe("fencing a node that was paused", () => {
  it("a node paused past its death kills its stale instances, delivers nothing from them, and registers again", async (t) => {
    let s: Setup | undefined;
    let stopped = false;
    try {
      s = await setUp();
      const { redis, a, b, plain, pids, n1 } = s;
      const launcher = new Launcher({ redis: redis.url, prefix: "t" });
      t.after(() => launcher.close());

      // Answered while n1 is frozen: the answer waits in n1's pipe from the process.
      a.send({ type: "send", instance: "keep", action: "later", data: { ms: 1_500 } });
      a.send({ type: "send", instance: "keep", action: "echo", data: "later was taken" });
      await a.next((f) => f.action === "echo" && f.data === "later was taken");
      const pausedAt = Date.now();
      n1.child.kill("SIGSTOP");
      stopped = true;
      // Sent while n1 is frozen: it waits in n1's socket buffer, for the stale process to answer.
      a.send({ type: "send", instance: "keep", action: "whoami" });
      for (const client of [a, b]) {
        await eventually(() => client.frames.some((f) => f.type === "closed" && f.instance === plain && f.reason === "lost"), "plain to be reported lost", 30_000);
      }
      const lostMs = Date.now() - pausedAt;
      await eventually(
        async () => {
          const r = await redis.client.hmget("{t}:instance:keep", "node", "state");
          return r[0] === "n2" && r[1] === "ready";
        },
        "keep to be relaunched on n2",
        30_000,
      );
      for (const client of [a, b]) assert.equal((await client.request({ type: "join", instance: "keep" })).type, "joined");
      const fresh = await whoami(b, "keep");
      assert.notEqual(fresh, pids.keep);

      n1.child.kill("SIGCONT");
      stopped = false;
      const resumedAt = Date.now();
      await eventually(() => !alive(pids.keep) && !alive(pids.plain), "the stale processes on n1 to be gone", 20_000);
      const goneMs = Date.now() - resumedAt;

      // One whoami, one answer: an echo through the same instance is the barrier.
      take(a, (f) => f.action === "whoami");
      a.send({ type: "send", instance: "keep", action: "whoami" });
      a.send({ type: "send", instance: "keep", action: "echo", data: "barrier" });
      await a.next((f) => f.action === "echo" && f.data === "barrier");
      const answers = take(a, (f) => f.action === "whoami");
      assert.deepEqual(
        answers.map((f) => f.data.pid),
        [fresh],
        "exactly one answer, from the relaunched process",
      );
      for (const client of [a, b]) {
        assert.deepEqual(
          client.frames.filter((f) => f.data?.pid === pids.keep || f.data?.pid === pids.plain),
          [],
          "nothing from a stale process",
        );
      }
      // The log says how long n1 went unconfirmed.
      assert.match(n1.stderr(), /"unconfirmedMs":\d+/);

      // n1 is back as a fresh incarnation with nothing running, and says it fenced.
      await eventually(
        async () => {
          const n = (await launcher.nodes()).find((x) => x.id === "n1");
          return n !== undefined && n.running === 0 && n.fenced === 1;
        },
        "n1 to register again with nothing running",
        10_000,
      );
      assert.match(n1.stderr(), /node was declared dead while it was unresponsive; fencing: stopping 2 stale instances/);
      const ids = (await launcher.list()).map((r) => r.instance);
      assert.deepEqual([...ids].sort(), ["keep"], "each instance listed once; plain is gone");

      // All of the capacity is back: 12 slots, keep holds one.
      const launched = await Promise.allSettled(Array.from({ length: 11 }, () => launcher.launch("plain", { timeoutMs: 20_000 })));
      assert.deepEqual(
        launched.filter((r) => r.status === "rejected").map((r) => String(r.reason)),
        [],
      );
      t.diagnostic(`plain reported lost ${lostMs} ms into the pause; stale processes gone ${goneMs} ms after SIGCONT`);
    } finally {
      await tearDown(s, () => stopped);
    }
    assert.deepEqual(descendants(), []);
  });

  it("a pause shorter than the death threshold disturbs nothing", async () => {
    let s: Setup | undefined;
    let stopped = false;
    try {
      s = await setUp();
      const { redis, a, b, plain, pids, n1 } = s;
      n1.child.kill("SIGSTOP");
      stopped = true;
      a.send({ type: "send", instance: "keep", action: "echo", data: "during the pause" });
      await new Promise((r) => setTimeout(r, 2_000));
      n1.child.kill("SIGCONT");
      stopped = false;
      await a.next((f) => f.action === "echo" && f.data === "during the pause");
      assert.equal(await whoami(a, "keep"), pids.keep);
      assert.equal(await whoami(b, plain), pids.plain);
      // Two heartbeats later nothing has changed either.
      const launcher = new Launcher({ redis: redis.url, prefix: "t" });
      try {
        await eventually(async () => ((await launcher.nodes()).find((x) => x.id === "n1")?.seen ?? 0) > Date.now() - 1_000, "n1 to beat again");
        const n = (await launcher.nodes()).find((x) => x.id === "n1")!;
        assert.equal(n.running, 2);
        assert.equal(n.fenced, 0);
        assert.deepEqual(
          (await launcher.list()).map((r) => [r.instance, r.node]).sort(),
          [
            ["keep", "n1"],
            [plain, "n1"],
          ].sort(),
        );
      } finally {
        await launcher.close();
      }
      assert.equal(await whoami(a, "keep"), pids.keep);
      for (const client of [a, b])
        assert.deepEqual(
          client.frames.filter((f) => f.type === "closed"),
          [],
        );
      assert.ok(alive(pids.keep) && alive(pids.plain));
      assert.doesNotMatch(n1.stderr(), /fencing/);
    } finally {
      await tearDown(s, () => stopped);
    }
    assert.deepEqual(descendants(), []);
  });
});
