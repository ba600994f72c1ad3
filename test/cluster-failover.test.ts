/**
 * Servman on a Redis Cluster (3 masters, 3 replicas) through a failover under traffic (docs/redis.md#topologies):
 * a master dies while a client sends echoes and its instance broadcasts a numbered stream, and
 * nothing restarts, the connection stays open, every send is echoed or answered with an error,
 * and every event is received in order or counted in `dropped`. Then the data-loss case: masters
 * emptied (FLUSHALL), and nodes and gateways write the registry and sessions back.
 * Durations are printed (SIGKILL -> first relayed message), never asserted.
 */
import assert from "node:assert/strict";
import { after, before, describe, it, type TestContext } from "node:test";
import { loadConfig } from "../src/config/load-config.js";
import { Keys } from "../src/keys.js";
import { Launcher } from "../src/launcher/launcher.js";
import { TestCluster, testLogger, testTasks, writeConfig, type RawClient } from "./helpers/cluster.js";
import { describeTraffic, disorder, FailoverTraffic, lostNothingSilently } from "./helpers/failover-traffic.js";
import { descendants, eventually } from "./helpers/processes.js";
import { askNode, startRedisCluster, type TestRedisCluster } from "./helpers/redis-cluster.js";

const keys = new Keys("t", { cluster: true });

describe("Servman on a Redis Cluster: failover under traffic", () => {
  let redis: TestRedisCluster;
  let cluster: TestCluster;

  before(async () => {
    redis = await startRedisCluster();
    const file = writeConfig({
      redis: { cluster: redis.startupUrls },
      prefix: "t",
      gateway: { host: "127.0.0.1", port: 0 },
      node: { capacity: 10, shutdownDeadlineMs: 2000 },
      tasks: testTasks(),
    });
    cluster = new TestCluster(loadConfig({ config: file }, { PATH: process.env.PATH }), testLogger());
    await cluster.addNode();
    await cluster.addNode();
    await cluster.addGateway();
    await cluster.addGateway();
  });
  after(async () => {
    await cluster?.close();
    await redis?.stop();
    assert.deepEqual(descendants(), [], "no child process is left");
  });

  /**
   * An unused instance id whose channel lives on the master on `port`, and, with `gateway`, whose
   * fanouts to that gateway too (its gateway channel for the instance: keys.gatewayChannel).
   */
  async function instanceOn(port: number, tag: string, gateway?: string): Promise<string> {
    for (let i = 0; i < 400; i++) {
      const id = `${tag}-${i}`;
      if ((await redis.masterOf(keys.instanceChannel(id))).port !== port) continue;
      if (gateway === undefined || (await redis.masterOf(keys.gatewayChannel(gateway, id))).port === port) return id;
    }
    throw new Error(`no instance id of ${tag} hashes to ${port}`);
  }

  async function launchAndJoin(client: RawClient, instance: string): Promise<number> {
    assert.equal((await client.request({ type: "launch", task: "echo", instance }, 30_000)).type, "launched");
    // Shortly after a failover, a join can reach no node while sharded subscriptions are made again
    // on the new master: it is answered `unavailable` (never silently lost), and asked again.
    let joined: Record<string, any> = {};
    await eventually(
      async () => {
        joined = await client.request({ type: "join", instance });
        if (joined.type !== "joined" && joined.code !== "unavailable") assert.fail(`join: ${JSON.stringify(joined)}`);
        return joined.type === "joined";
      },
      `a join of ${instance}`,
      15_000,
    );
    client.send({ type: "send", instance, action: "whoami" });
    return (await client.next((f) => f.type === "message" && f.action === "whoami" && f.instance === instance)).data.pid as number;
  }

  /** Kills the master on `port` under traffic on gateway `g`, checks the contract, and restarts the node as a replica. */
  async function failoverUnderTraffic(t: TestContext, port: number, g: number, tag: string, withGatewayChannel: boolean): Promise<void> {
    const { gateways, nodes } = cluster;
    const [gatewaysBefore, nodesBefore] = [[...gateways], [...nodes]];
    const client = await cluster.raw(g);
    const instance = await instanceOn(port, tag, withGatewayChannel ? gateways[g].id : undefined);
    const pid = await launchAndJoin(client, instance);
    const traffic = new FailoverTraffic(client, instance);
    await traffic.start();

    traffic.mark();
    const killedAt = Date.now();
    await redis.kill(port);
    const heir = await redis.waitForFailover(port);
    const promotedMs = Date.now() - killedAt;
    await traffic.recovered(30_000);
    const report = await traffic.stop();
    t.diagnostic(`killed master ${port} (gateway channel there: ${(await redis.masterOf(keys.gatewayChannel(gateways[g].id, instance))).port === heir.port}); promoted after ${promotedMs} ms`);
    t.diagnostic(describeTraffic(report));

    assert.deepEqual(lostNothingSilently(report), []);
    // Publishes a node's connection retries after its shard's master died go out again in no fixed
    // order (ioredis); the gateway puts them back in order by their chain (gateway/fanout-order.ts).
    // A fanout retried late, after later events were kept and replayed, is counted, not sent late
    // (gateway/replay-gate.ts, gateway/session.ts onFanout).
    assert.deepEqual(disorder(report), { outOfOrder: [], duplicates: 0 }, "ticks in order, none twice");
    assert.equal(client.closeCode, null, "the client's connection was never closed");
    assert.ok(gateways.length === gatewaysBefore.length && gateways.every((x, i) => x === gatewaysBefore[i]), "the same gateways");
    assert.ok(nodes.length === nodesBefore.length && nodes.every((x, i) => x === nodesBefore[i]), "the same nodes");
    client.send({ type: "send", instance, action: "whoami" });
    assert.equal((await client.next((f) => f.type === "message" && f.action === "whoami" && f.instance === instance)).data.pid, pid, "the instance's process is the same");

    // New launches and joins work after the failover, on the same connection.
    const again = await instanceOn(heir.port, `${tag}-after`);
    await launchAndJoin(client, again);
    client.send({ type: "send", instance: again, action: "echo", data: "again" });
    assert.equal((await client.next((f) => f.type === "message" && f.data === "again")).instance, again);

    await client.close();
    // Back to 3 masters with a replica each, for the next case.
    await redis.restart(port);
  }

  it("a master carrying the instance's and the gateway's channels dies: no restart, nothing lost silently", async (t) => {
    const port = (await redis.masters())[0].port;
    await failoverUnderTraffic(t, port, 0, "chan", true);
  });

  it("the master of the registry slot {t} dies: no restart, nothing lost silently", async (t) => {
    // The instance's channel is there too; its fanouts to the gateway go wherever they hash.
    await failoverUnderTraffic(t, (await redis.masterOf("{t}")).port, 1, "reg", false);
  });

  it("the masters of {t} and {t:sessions} lose their data: nodes and gateways write the registry and sessions back", async (t) => {
    const client = await cluster.raw(1);
    const instance = "kept";
    await launchAndJoin(client, instance);
    const launcher = new Launcher({ redis: cluster.config.redis, prefix: "t" });
    const probe = redis.client();
    try {
      assert.ok(await probe.exists(keys.session(client.session)), "the session is stored");
      const ports = new Set([(await redis.masterOf("{t}")).port, (await redis.masterOf("{t:sessions}")).port]);
      const flushedAt = Date.now();
      for (const port of ports) await askNode(port, "FLUSHALL");
      assert.equal(await launcher.get(instance), null, "the registry is gone");

      await eventually(async () => (await launcher.get(instance))?.state === "ready", "the instance's record written back", 30_000);
      await eventually(async () => (await probe.exists(keys.session(client.session))) === 1, "the session written back", 30_000);
      t.diagnostic(`FLUSHALL of ${ports.size} master(s) -> registry and session back in ${Date.now() - flushedAt} ms`);
      assert.ok((await launcher.list()).some((r) => r.instance === instance));
      await eventually(async () => (await launcher.nodes()).length === cluster.nodes.length, "every node registered again", 30_000);

      client.send({ type: "send", instance, action: "echo", data: "still here" });
      assert.equal((await client.next((f) => f.type === "message" && f.data === "still here")).instance, instance);
      await launchAndJoin(client, "kept-after");
      assert.equal(client.closeCode, null);
    } finally {
      await launcher.close();
    }
  });
});
