/**
 * redis-server is shut down and started again on the same port, once empty (no persistence: the
 * registry, the node records and the queues are gone) and once with its data (append-only file).
 * Either way the nodes put their instances back in the registry, subscriptions come back, a
 * joined client talks to its instance again, launches and stops work, and /healthz says 503 only
 * while Redis is away. Messages sent meanwhile are answered `unavailable`, never silently lost.
 */
import assert from "node:assert/strict";
import { describe, it, type TestContext } from "node:test";
import { Keys } from "../src/keys.js";
import { Launcher } from "../src/launcher/launcher.js";
import { startCluster, type RawClient } from "./helpers/cluster.js";
import { descendants, eventually } from "./helpers/processes.js";
import { startRedis } from "./helpers/redis-server.js";

/** Messages a client sends while Redis is away. */
const DURING = 10;

/** Sends `count` echo requests and waits until each got its echo or an error: how many of each. */
async function sendAll(client: RawClient, instance: string, tag: string, count: number): Promise<{ echoed: number; unavailable: number; other: string[] }> {
  for (let i = 0; i < count; i++) client.send({ type: "send", instance, action: "echo", data: `${tag}-${i}`, id: `${tag}-${i}` });
  const result = { echoed: 0, unavailable: 0, other: [] as string[] };
  for (let i = 0; i < count; i++) {
    const frame = await client.next((f) => f.id === `${tag}-${i}` || (f.action === "echo" && f.data === `${tag}-${i}`), 30_000);
    if (frame.type === "message") result.echoed++;
    else if (frame.code === "unavailable") result.unavailable++;
    else result.other.push(JSON.stringify(frame));
  }
  return result;
}

async function restart(t: TestContext, persistence: boolean): Promise<void> {
  const redis = await startRedis({ persistence });
  const cluster = await startCluster(redis);
  const launcher = new Launcher({ redis: redis.url, prefix: "t" });
  const nodeId = cluster.nodes[0].id;
  const health = () =>
    fetch(cluster.gateways[0].url.replace("ws://", "http://").replace("/v1/connect", "/healthz")).then(
      (r) => r.status,
      () => 0,
    );
  try {
    const client = await cluster.raw();
    const { instance } = await client.request({ type: "launch", task: "echo" });
    assert.equal((await client.request({ type: "join", instance })).type, "joined");
    assert.deepEqual(await sendAll(client, instance, "before", 1), { echoed: 1, unavailable: 0, other: [] });
    assert.equal(await health(), 200);
    const before = await launcher.get(instance);

    await redis.down();
    await eventually(async () => (await health()) === 503, "/healthz to report 503", 10_000);
    const during = await sendAll(client, instance, "during", DURING);
    assert.deepEqual(during, { echoed: 0, unavailable: DURING, other: [] }, "each message sent during the outage is answered unavailable");

    await redis.up();
    const upAt = Date.now();
    await eventually(
      async () => {
        const listed = await launcher.list().catch(() => []);
        return listed.some((r) => r.instance === instance && r.state === "ready" && r.node === nodeId);
      },
      "the instance to be in the registry again",
      15_000,
    );
    const rebuiltMs = Date.now() - upAt;
    await eventually(async () => (await launcher.nodes().catch(() => [])).some((n) => n.id === nodeId), "the node's record", 10_000);
    const { tries: _t, lastError: _l, retryBy: _r, created: _c, ...restored } = (await launcher.get(instance))!;
    const { tries: _t2, lastError: _l2, retryBy: _r2, created: _c2, ...original } = before!;
    assert.deepEqual(restored, original, "the record is written back as it was");
    await eventually(async () => (await health()) === 200, "/healthz to recover", 15_000);
    const healthyMs = Date.now() - upAt;

    // The node may still be resubscribing: messages go out until one comes back (each one that
    // does not is counted).
    let tries = 0;
    await eventually(
      async () => {
        tries++;
        const r = await sendAll(client, instance, `after${tries}`, 1);
        return r.echoed === 1;
      },
      "a message to reach the instance and its echo to come back",
      15_000,
    );
    const flowingMs = Date.now() - upAt;
    client.send({ type: "send", instance, action: "shout", data: "hello all" });
    assert.equal((await client.next((f) => f.action === "shout", 10_000)).data.data, "hello all");

    // The gateway wrote its session back too: it can still be resumed elsewhere after a drop.
    await cluster.addGateway();
    const held = [...cluster.gateways[0]["sessions"].values()].find((x) => x.id === client.session);
    await eventually(async () => (await launcher["redis"].hget(new Keys("t").session(client.session), "gw")) === cluster.gateways[0].id, "the session record to be back", 10_000);
    held!["ws"].terminate();
    const again = await cluster.raw(1);
    const resumed = await again.request({ type: "resume", session: client.welcome.session, resume: client.welcome.resume }, 15_000);
    assert.deepEqual([resumed.type, resumed.instances], ["resumed", [instance]], JSON.stringify(resumed));

    const fresh = await again.request({ type: "launch", task: "echo" }, 30_000);
    assert.equal(fresh.type, "launched", JSON.stringify(fresh));
    assert.equal((await again.request({ type: "stop", instance })).type, "stopped", "the instance from before the restart stops");
    assert.equal((await again.request({ type: "stop", instance: fresh.instance })).type, "stopped");
    assert.deepEqual(await launcher.list(), []);
    t.diagnostic(
      `${persistence ? "with" : "without"} persistence: registry has the instance ${rebuiltMs} ms after Redis came back, ` +
        `/healthz 200 after ${healthyMs} ms, messages flow after ${flowingMs} ms; during the outage ${DURING} sent, ` +
        `${during.unavailable} answered unavailable, ${during.echoed} delivered; after it ${tries - 1} sent before the node had resubscribed`,
    );
  } finally {
    await launcher.close();
    await cluster.close();
    await redis.stop();
  }
}

describe("Redis restart", () => {
  it("empty: nodes write the registry back, and everything works again", (t) => restart(t, false));
  it("with its data: everything works again", (t) => restart(t, true));
  it("leaves no process behind", () => assert.deepEqual(descendants(), []));
});
