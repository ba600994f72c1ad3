/**
 * The Redis Cluster and Sentinel test helpers start the real thing, and what our libraries
 * (ioredis 6, BullMQ 6) do on them: sharded pub/sub, hash tags, scripts and MULTI in one slot,
 * BullMQ queue prefixes, and recovery after a master dies. Durations are reported with
 * `t.diagnostic`, never asserted.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Queue, Worker } from "bullmq";
import { Redis, type Cluster } from "ioredis";
import { askNode, startRedisCluster, type TestRedisCluster } from "./helpers/redis-cluster.js";
import { startRedisSentinel, type TestRedisSentinel } from "./helpers/redis-sentinel.js";
import { descendants, eventually } from "./helpers/processes.js";

const tick = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves `attempt()`, or rejects if it takes over `ms` (a command stuck in an offline queue). */
function within<T>(attempt: Promise<T>, ms: number): Promise<T> {
  return Promise.race([attempt, tick(ms).then(() => Promise.reject(new Error(`no answer in ${ms} ms`)))]);
}

/** Retries `attempt` until it resolves; returns how long after `since` it first did. */
async function firstSuccess(attempt: () => Promise<unknown>, what: string, since: number, ms = 30_000): Promise<number> {
  const end = Date.now() + ms;
  for (;;) {
    try {
      await within(attempt(), 2000);
      return Date.now() - since;
    } catch (err) {
      if (Date.now() > end) throw new Error(`${what}: still failing after ${ms} ms (${(err as Error).message})`);
      await tick(50);
    }
  }
}

/** Collects the messages a subscriber gets, by channel. */
function inbox(client: Redis | Cluster, event: "message" | "smessage"): Map<string, string[]> {
  const got = new Map<string, string[]>();
  client.on(event, (channel: string, message: string) => {
    got.set(channel, [...(got.get(channel) ?? []), message]);
  });
  return got;
}

/**
 * Publishes `${tag}-N` on `channel` until one such message arrives (a subscription that is being
 * restored may miss the first ones); returns how long after `since` it did, or undefined.
 */
async function deliveredAgain(publish: (message: string) => Promise<unknown>, got: Map<string, string[]>, channel: string, tag: string, since: number, ms: number): Promise<number | undefined> {
  const end = Date.now() + ms;
  for (let n = 0; Date.now() < end; n++) {
    await within(publish(`${tag}-${n}`), 2000).catch(() => {});
    await tick(100);
    if ((got.get(channel) ?? []).some((m) => m.startsWith(`${tag}-`))) return Date.now() - since;
  }
  return undefined;
}

describe("Redis Cluster (3 masters, 3 replicas)", () => {
  let cluster: TestRedisCluster;
  let startupMs = 0;
  before(async () => {
    const started = Date.now();
    cluster = await startRedisCluster();
    startupMs = Date.now() - started;
  });
  after(async () => {
    await cluster?.stop();
  });

  it("has 3 masters covering the 16384 slots, each with a linked replica", async (t) => {
    t.diagnostic(`cluster ready ${startupMs} ms after the start`);
    const masters = await cluster.masters();
    const replicas = await cluster.replicas();
    assert.equal(masters.length, 3);
    assert.equal(replicas.length, 3);
    const covered = masters.flatMap((m) => m.slots).reduce((sum, [from, to]) => sum + to - from + 1, 0);
    assert.equal(covered, 16384);
    for (const m of masters)
      assert.ok(
        replicas.some((r) => r.masterId === m.id),
        `master ${m.port} has a replica`,
      );
    assert.equal((await cluster.masterOf(0)).port, masters.find((m) => m.slots.some(([f]) => f === 0))!.port);
  });

  it("sharded pub/sub (shardedSubscribers: true) receives SPUBLISH on channels of every master", async (t) => {
    const sub = cluster.client({ shardedSubscribers: true });
    const pub = cluster.client();
    const got = inbox(sub, "smessage");
    // One channel per master, so the subscriptions go to 3 different shards.
    const channels = new Map<number, string>();
    for (let i = 0; channels.size < 3 && i < 100; i++) {
      const channel = `servman:to-instance:${i}`;
      const master = await cluster.masterOf(channel);
      if (!channels.has(master.port)) channels.set(master.port, channel);
    }
    assert.equal(channels.size, 3);
    for (const channel of channels.values()) await sub.ssubscribe(channel);
    for (const channel of channels.values()) {
      assert.equal(await pub.spublish(channel, `hello ${channel}`), 1, "one sharded subscriber on the shard");
    }
    await eventually(() => [...channels.values()].every((c) => got.get(c)?.[0] === `hello ${c}`), "every sharded message");
    // A plain PUBLISH does not reach a sharded subscription.
    await pub.publish([...channels.values()][0], "plain");
    const stats = await cluster.commandStats();
    t.diagnostic(`spublish calls per node: ${stats.nodes.map((n) => `${n.port}=${n.calls.spublish ?? 0}`).join(" ")}`);
    t.diagnostic(`CPU seconds per node so far: ${stats.nodes.map((n) => `${n.port}=${n.cpuSeconds.toFixed(2)}`).join(" ")}`);
    assert.equal(stats.totals.spublish, 3);
    await tick(200);
    assert.ok(!got.get([...channels.values()][0])!.includes("plain"));
  });

  it("a plain PUBLISH goes over the cluster bus to every other node; an SPUBLISH only to its shard's replica", async (t) => {
    const pub = cluster.client();
    const busSent = async () => {
      const sent = { publish: 0, publishshard: 0 };
      for (const port of cluster.ports) {
        const info = String(await askNode(port, "CLUSTER", "INFO"));
        sent.publish += Number(/cluster_stats_messages_publish_sent:(\d+)/.exec(info)?.[1] ?? 0);
        sent.publishshard += Number(/cluster_stats_messages_publishshard_sent:(\d+)/.exec(info)?.[1] ?? 0);
      }
      return sent;
    };
    const start = await busSent();
    for (let i = 0; i < 10; i++) await pub.publish("servman:events", "x");
    const afterPlain = await busSent();
    for (let i = 0; i < 10; i++) await pub.spublish("servman:events", "x");
    const afterSharded = await busSent();
    t.diagnostic(`bus messages for 10 PUBLISH: ${afterPlain.publish - start.publish}; for 10 SPUBLISH: ${afterSharded.publishshard - afterPlain.publishshard}`);
    assert.equal(afterPlain.publish - start.publish, 10 * 5);
    assert.equal(afterSharded.publishshard - afterPlain.publishshard, 10 * 1);
    assert.equal(afterSharded.publish, afterPlain.publish);
  });

  it("without shardedSubscribers, SSUBSCRIBE fails for channels of other masters than its one connection's", async () => {
    const sub = cluster.client();
    const outcomes: string[] = [];
    const seen = new Set<number>();
    for (let i = 0; seen.size < 3 && i < 100; i++) {
      const channel = `servman:plain-sub:${i}`;
      const master = await cluster.masterOf(channel);
      if (seen.has(master.port)) continue;
      seen.add(master.port);
      outcomes.push(
        await within(sub.ssubscribe(channel), 10_000).then(
          () => "ok",
          (err: Error) => err.message,
        ),
      );
    }
    // The one subscriber connection sits on one node: at most one of 3 masters accepts.
    assert.ok(outcomes.filter((o) => /MOVED|redirections/.test(o)).length >= 2, outcomes.join("; "));
  });

  it("keys with one hash tag share a slot; MSET, a Lua script and MULTI work over them", async () => {
    const client = cluster.client();
    assert.equal(await cluster.slotOf("{x}:a"), await cluster.slotOf("{x}:b"));
    assert.equal(await cluster.slotOf("{x}:a"), await cluster.slotOf("x"));
    await client.mset("{x}:a", "1", "{x}:b", "2");
    // Keys in different slots are refused (by ioredis or by the server, CROSSSLOT).
    assert.notEqual(await cluster.slotOf("servman:a"), await cluster.slotOf("servman:b"));
    await assert.rejects(client.mset("servman:a", "1", "servman:b", "2"), /CROSSSLOT|same slot/i);

    client.defineCommand("moveValue", {
      numberOfKeys: 2,
      lua: "local v = redis.call('GET', KEYS[1]); redis.call('SET', KEYS[2], v); redis.call('DEL', KEYS[1]); return v",
    });
    const scripted = client as unknown as { moveValue(from: string, to: string): Promise<string> };
    assert.equal(await scripted.moveValue("{x}:a", "{x}:c"), "1");
    assert.equal(await client.get("{x}:c"), "1");
    assert.equal(await client.exists("{x}:a"), 0);
    await assert.rejects(scripted.moveValue("servman:a", "servman:b"), /CROSSSLOT|same slot/i);

    const results = await client.multi().set("{m}:a", "1").incr("{m}:n").get("{m}:a").exec();
    assert.deepEqual(results, [
      [null, "OK"],
      [null, 1],
      [null, "1"],
    ]);
  });

  it("BullMQ runs a job with a hash-tagged prefix, or a hash-tagged queue name; the default prefix fails", async (t) => {
    // BullMQ refuses a Worker whose Cluster has redisOptions.maxRetriesPerRequest set (not null).
    const connection = cluster.client({ redisOptions: { maxRetriesPerRequest: null } });
    for (const [name, prefix] of [
      ["echo", "{servman:t}"],
      ["{echo}", "servman:launch"],
    ] as const) {
      const queue = new Queue(name, { connection, prefix });
      const worker = new Worker(name, (job) => Promise.resolve((job.data as { n: number }).n * 2), { connection, prefix });
      const done = new Promise<unknown>((resolve, reject) => {
        worker.once("completed", (_job, result) => resolve(result));
        worker.once("failed", (_job, err) => reject(err));
      });
      await queue.add("launch", { n: 21 });
      assert.equal(await done, 42);
      await worker.close();
      await queue.close();
      // Every key of the queue sits on the one master of its hash tag.
      const tag = name.startsWith("{") ? name : prefix;
      const master = await cluster.masterOf(tag);
      const keys = (await askNode(master.port, "KEYS", `${prefix}:${name}:*`)) as string[];
      assert.ok(keys.length > 0);
      const slots = new Set(await Promise.all(keys.map((k) => cluster.slotOf(k))));
      assert.equal(slots.size, 1);
      t.diagnostic(`queue ${name} prefix ${prefix}: ${keys.length} keys, all in slot ${[...slots][0]} on ${master.port}`);
    }
    const untagged = new Queue("echo", { connection, prefix: "servman:launch" });
    untagged.on("error", () => {});
    await assert.rejects(untagged.add("launch", { n: 1 }), /CROSSSLOT|same slot/i);
    await untagged.close();
  });

  it("after a master dies, the cluster client, its sharded subscription and a BullMQ worker recover by themselves", async (t) => {
    const client = cluster.client();
    const sub = cluster.client({ shardedSubscribers: true });
    const subscriberEvents: Record<string, number> = {};
    for (const event of ["-subscriber", "error", "refresh"]) sub.on(event, () => (subscriberEvents[event] = (subscriberEvents[event] ?? 0) + 1));
    // A BullMQ queue and worker whose keys are in the same slot as the key and channel.
    const connection = cluster.client({ redisOptions: { maxRetriesPerRequest: null } });
    const queue = new Queue("echo", { connection, prefix: "{fo}" });
    const worker = new Worker("echo", (job) => Promise.resolve((job.data as { n: number }).n), { connection, prefix: "{fo}" });
    const workerErrors: string[] = [];
    queue.on("error", () => {});
    worker.on("error", (err) => workerErrors.push(err.message));
    const completed: Array<{ at: number; result: number }> = [];
    worker.on("completed", (_job, result: number) => completed.push({ at: Date.now(), result }));
    await queue.add("launch", { n: 1 });
    await eventually(() => completed.length === 1, "the job before the failover");
    const got = inbox(sub, "smessage");
    const key = "{fo}:key";
    const channel = "{fo}:channel";
    await client.set(key, "before");
    await sub.ssubscribe(channel);
    assert.equal(await client.spublish(channel, "before"), 1);
    await eventually(() => got.get(channel)?.includes("before") === true, "the message before the failover");

    const old = await cluster.masterOf("{fo}");
    const killedAt = Date.now();
    await cluster.kill(old.port);
    const heir = await cluster.waitForFailover(old.port);
    const failoverMs = Date.now() - killedAt;
    assert.notEqual(heir.port, old.port);
    assert.equal((await cluster.masterOf("{fo}")).port, heir.port);

    const setMs = await firstSuccess(() => client.set(key, "after"), "SET on the failed slot", killedAt);
    assert.equal(await client.get(key), "after");
    const subMs = await deliveredAgain((m) => client.spublish(channel, m), got, channel, "after", killedAt, 30_000);
    const addMs = await firstSuccess(() => queue.add("launch", { n: 2 }), "a BullMQ add on the failed slot", killedAt);
    await eventually(() => completed.some((c) => c.result === 2), "the job after the failover", 30_000);
    const jobMs = completed.find((c) => c.result === 2)!.at - killedAt;
    await worker.close();
    await queue.close();
    t.diagnostic(`cluster failover (node timeout 1000 ms): slots moved after ${failoverMs} ms; SET ok after ${setMs} ms`);
    t.diagnostic(`sharded subscription delivered again after ${subMs ?? "never (30 s)"} ms; BullMQ add ok after ${addMs} ms, job done after ${jobMs} ms`);
    t.diagnostic(`sharded subscriber client meanwhile: ${JSON.stringify(subscriberEvents)}; worker errors: ${[...new Set(workerErrors)].join(" | ") || "none"}`);
    assert.ok(subMs !== undefined, "ioredis re-subscribed the sharded channel on the new master by itself");

    // The old master comes back as a replica of its heir.
    await cluster.restart(old.port);
    // The node says it is a replica at once; the node asked may learn it a gossip round later.
    await eventually(async () => (await cluster.replicas()).find((r) => r.port === old.port)?.masterId === heir.id, "the old master seen as a replica of its heir", 15_000);
  });
});

describe("Redis Sentinel (master, replica, 3 sentinels, with a password)", () => {
  let sentinel: TestRedisSentinel;
  let startupMs = 0;
  before(async () => {
    const started = Date.now();
    sentinel = await startRedisSentinel({ password: "s3cret-pass" });
    startupMs = Date.now() - started;
  });
  after(async () => {
    await sentinel?.stop();
  });

  it("after a manual failover (old master alive), failoverDetector clients follow at once; plain ones stay behind", async (t) => {
    t.diagnostic(`sentinel setup ready ${startupMs} ms after the start`);
    const plain = new Redis(sentinel.clientOptions());
    const detecting = new Redis(sentinel.clientOptions({ failoverDetector: true }));
    const detectingSub = new Redis(sentinel.clientOptions({ failoverDetector: true }));
    for (const c of [plain, detecting, detectingSub]) c.on("error", () => {});
    try {
      const oldPort = await sentinel.master();
      await plain.set("plain", "0");
      await detecting.set("detecting", "0");
      const got = inbox(detectingSub, "message");
      await detectingSub.subscribe("servman:events");
      // Where the plain client writes while the sentinels already name the new master.
      const startedAt = Date.now();
      let plainMovedAt: number | undefined;
      const windowKeys: string[] = [];
      // eslint-disable-next-line prefer-const -- assigned below, after the watcher above starts reading it
      let newPort: number | undefined;
      const watchPlain = (async () => {
        for (let n = 0; plainMovedAt === undefined && Date.now() - startedAt < 30_000; n++) {
          const named = newPort !== undefined;
          const ok = await within(plain.set(`plain:${n}`, "x"), 2000).then(
            () => true,
            () => false,
          );
          if (ok && named && plain.stream.remotePort === oldPort) windowKeys.push(`plain:${n}`);
          if (ok && named && plain.stream.remotePort === newPort) plainMovedAt = Date.now();
          await tick(100);
        }
      })();
      newPort = await sentinel.failover();
      const namedMs = Date.now() - startedAt;
      assert.notEqual(newPort, oldPort);
      const detectingMs = await firstSuccess(
        async () => {
          await detecting.set("detecting", "1");
          assert.equal(detecting.stream.remotePort, newPort);
        },
        "the failoverDetector client on the new master",
        startedAt,
      );
      const subMs = await deliveredAgain((m) => detecting.publish("servman:events", m), got, "servman:events", "after", startedAt, 30_000);
      assert.equal(detectingSub.stream.remotePort, newPort);
      await watchPlain;
      await sentinel.waitForReplica(oldPort);
      const relinkedMs = Date.now() - startedAt;
      t.diagnostic(`manual failover: new master named after ${namedMs} ms, old one a linked replica after ${relinkedMs} ms`);
      t.diagnostic(`failoverDetector client on the new master after ${detectingMs} ms, its subscriber receiving after ${subMs} ms`);
      const kept = windowKeys.length > 0 ? await detecting.exists(...windowKeys) : 0;
      t.diagnostic(
        `plain client moved after ${plainMovedAt === undefined ? "never (30 s)" : `${plainMovedAt - startedAt} ms`}; the demoted master acknowledged ${windowKeys.length} of its writes meanwhile, ${kept} kept`,
      );
      assert.ok(subMs !== undefined);
      assert.ok(plainMovedAt !== undefined, "the plain client ends on the new master (sentinel kills the demoted master's clients)");
      assert.equal(kept, 0, "writes acknowledged by the demoted master are lost");
    } finally {
      for (const c of [plain, detecting, detectingSub]) c.disconnect();
    }
  });

  it("ioredis finds the master through the sentinels, and after a failover reconnects and resubscribes", async (t) => {
    const client = new Redis(sentinel.clientOptions());
    const sub = new Redis(sentinel.clientOptions());
    for (const c of [client, sub]) c.on("error", () => {});
    try {
      const oldPort = await sentinel.master();
      await client.set("k", "before");
      assert.equal(client.stream.remotePort, oldPort);
      const got = inbox(sub, "message");
      await sub.subscribe("servman:events");
      assert.equal(await client.publish("servman:events", "before"), 1);
      await eventually(() => got.get("servman:events")?.includes("before") === true, "the message before the failover");

      const killedAt = Date.now();
      await sentinel.kill(oldPort);
      const newPort = await sentinel.waitForFailover(oldPort);
      const failoverMs = Date.now() - killedAt;
      assert.equal(
        newPort,
        sentinel.dataPorts.find((p) => p !== oldPort),
      );

      const setMs = await firstSuccess(() => client.set("k", "after"), "SET after the failover", killedAt);
      assert.equal(client.stream.remotePort, newPort);
      assert.equal(await client.get("k"), "after");
      const subMs = await deliveredAgain((m) => client.publish("servman:events", m), got, "servman:events", "after", killedAt, 30_000);
      t.diagnostic(`sentinel failover (down-after 1000 ms): new master named after ${failoverMs} ms; SET ok after ${setMs} ms`);
      t.diagnostic(`plain subscription delivered again after ${subMs ?? "never (30 s)"} ms`);
      assert.ok(subMs !== undefined, "ioredis resubscribed on the new master by itself");
      assert.equal(sub.stream.remotePort, newPort);
    } finally {
      client.disconnect();
      sub.disconnect();
    }
  });
});

it("leaves no redis-server process behind", () => {
  const left = descendants().filter((p) => p.cmd.includes("redis-server"));
  assert.deepEqual(left, []);
});
