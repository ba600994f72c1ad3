/**
 * Fan-out by gateway (docs/architecture.md#fan-out-by-gateway): a service's event for K members
 * whose sessions are held by G gateways costs at most G + 1 publishes (PUBLISH and SPUBLISH),
 * counted with `INFO commandstats` on the test's own redis-server or summed over every node of a
 * Redis Cluster, where none is a plain PUBLISH; and every delivery guarantee holds: order per
 * client, a member that drops mid-stream and resumes misses nothing (or hears `dropped` for the
 * gap), targeted sends reach exactly their targets, and a kicked member hears no more.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { MemberDelivery, type DeliveryHost } from "../nodes/member-delivery.js";
import type { RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { cut, record } from "./helpers/sessions.js";
import { TOPOLOGIES } from "./helpers/redis-topology.js";
import { useCluster } from "./helpers/use-cluster.js";

/** The `shout` numbers in `frames`, in arrival order. */
function shouts(frames: Record<string, any>[]): number[] {
  return frames.filter((f) => f.type === "message" && f.action === "shout").map((f) => f.data.data as number);
}

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

for (const topology of TOPOLOGIES)
  describe(`fan-out by gateway (${topology})`, () => {
    const fx = useCluster({ topology, gateways: 2, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });

    /** An echo instance launched by `owner` (gateway 0), and `count` members (the owner first) spread over both gateways. */
    async function members(count: number): Promise<{ instance: string; clients: RawClient[] }> {
      const owner = await fx.cluster.raw(0);
      const launched = await owner.request({ type: "launch", task: "echo" }, 30_000);
      assert.equal(launched.type, "launched", JSON.stringify(launched));
      const instance = launched.instance as string;
      const clients = [owner];
      for (let i = 1; i < count; i++) clients.push(await fx.cluster.raw(i % 2));
      for (const c of clients) assert.equal((await c.request({ type: "join", instance })).type, "joined");
      return { instance, clients };
    }

    it("a broadcast to 100 members on 2 gateways costs at most 3 publishes, and 200 of them arrive in order", async (t) => {
      const { instance, clients } = await members(100);
      const frames = clients.map((c) => record(c));
      const before = await fx.redis.publishes();
      clients[0].send({ type: "send", instance, action: "shouts", data: { count: 200 } });
      await eventually(() => frames.every((f) => shouts(f).length === 200), "every member to get 200 shouts", 60_000);
      const after = await fx.redis.publishes();
      const publish = after.publish - before.publish;
      const spublish = after.spublish - before.spublish;
      // Less the owner's own send, which asked for the 200 broadcasts.
      const perBroadcast = (publish + spublish - 1) / 200;
      t.diagnostic(`${topology}: ${perBroadcast} publishes per broadcast to 100 members on 2 gateways (${publish} PUBLISH, ${spublish} SPUBLISH in all)`);
      assert.ok(perBroadcast <= 3, `${perBroadcast} publishes per broadcast (at most G + 1 = 3)`);
      // The client's send and the service's events went through sharded pub/sub only.
      if (topology === "cluster") assert.equal(publish, 0, "no plain PUBLISH on the relay path of a Redis Cluster");
      for (const f of frames) assert.deepEqual(shouts(f), range(0, 199), "every shout, once, in order");
      assert.equal((await clients[0].request({ type: "stop", instance })).type, "stopped");
    });

    it("a member whose connection drops mid-stream and resumes gets every event once, in order, or dropped for the gap", async () => {
      const { instance, clients } = await members(10);
      // Clients 1, 3, ... are on gateway 1; the one that drops is on gateway 0 and resumes on gateway 1.
      const [shouter, , victim] = clients;
      const before = record(victim);
      const others = clients.filter((c) => c !== victim).map((c) => record(c));
      let sent = 0;
      const sending = (async () => {
        for (; sent < 300; sent += 10) {
          shouter.send({ type: "send", instance, action: "shouts", data: { from: sent, count: 10 } });
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await eventually(() => shouts(before).length >= 50, "the stream to reach the victim");
      await cut(fx.cluster.gateways[0], victim.session);
      const again = await fx.cluster.raw(1);
      const after = record(again);
      const resumed = await again.request({ type: "resume", session: victim.welcome.session, resume: victim.welcome.resume });
      assert.equal(resumed.type, "resumed", JSON.stringify(resumed));
      await sending;
      await eventually(() => others.every((f) => shouts(f).length === 300), "the others to get every shout", 30_000);
      const dropped = after.filter((f) => f.type === "dropped").reduce((n, f) => n + (f.count as number), 0);
      await eventually(() => shouts(before).length + shouts(after).length + dropped === 300, "the victim to get every shout (or dropped for it)", 30_000);
      const got = [...shouts(before), ...shouts(after)];
      for (let i = 1; i < got.length; i++) assert.ok(got[i] > got[i - 1], `in order and once: ${got[i - 1]} then ${got[i]}`);
      assert.equal(got.length + dropped, 300);
      for (const f of others) assert.deepEqual(shouts(f), range(0, 299));
      assert.equal((await shouter.request({ type: "stop", instance })).type, "stopped");
    });

    it("a targeted send reaches exactly its targets, on either gateway", async () => {
      const { instance, clients } = await members(6);
      const frames = clients.map((c) => record(c));
      const targets = [clients[1], clients[2], clients[5]];
      clients[0].send({ type: "send", instance, action: "tell", data: { to: [...targets.map((c) => c.session), "not-a-member"], n: 1 } });
      // A broadcast after it: once everyone has it, the targeted one has arrived where it will.
      clients[0].send({ type: "send", instance, action: "shouts", data: { count: 1 } });
      await eventually(() => frames.every((f) => shouts(f).length === 1), "the marker broadcast everywhere");
      clients.forEach((c, i) => {
        const told = frames[i].filter((f) => f.action === "told").length;
        assert.equal(told, targets.includes(c) ? 1 : 0, `client ${i}`);
      });
      assert.equal((await clients[0].request({ type: "stop", instance })).type, "stopped");
    });

    it("a member kicked while broadcasts flow hears closed and nothing after it", async () => {
      const { instance, clients } = await members(8);
      const [shouter, , , victim] = clients;
      const frames = clients.map((c) => record(c));
      shouter.send({ type: "send", instance, action: "shouts", data: { from: 0, count: 100 } });
      shouter.send({ type: "send", instance, action: "kick-other", data: { client: victim.session } });
      shouter.send({ type: "send", instance, action: "shouts", data: { from: 100, count: 100 } });
      const v = clients.indexOf(victim);
      await eventually(() => frames.every((f, i) => i === v || shouts(f).length === 200), "the others to get every shout");
      await eventually(() => frames[v].some((f) => f.type === "closed"), "the victim to hear closed");
      const closedAt = frames[v].findIndex((f) => f.type === "closed");
      assert.deepEqual(frames[v][closedAt], { type: "closed", instance, reason: "kicked" });
      assert.deepEqual(shouts(frames[v].slice(0, closedAt)), range(0, 99), "every shout before the kick, in order");
      assert.deepEqual(shouts(frames[v].slice(closedAt)), [], "none after it");
      for (const [i, f] of frames.entries()) if (i !== v) assert.deepEqual(shouts(f), range(0, 199));
      assert.equal((await shouter.request({ type: "stop", instance })).type, "stopped");
    });
  });

describe("fan-out on the node, without a cluster", () => {
  const silent = pino({ level: "silent" });
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const event = (n: number) => JSON.stringify({ type: "message", instance: "i1", action: "shout", data: n });

  function delivery() {
    const state = { receivers: 1, published: [] as { channel: string; payload: string }[] };
    const host: DeliveryHost = {
      publishCounted: (channel, payload) => {
        state.published.push({ channel, payload });
        return Promise.resolve(state.receivers);
      },
      publish: (channel, payload) => void state.published.push({ channel, payload }),
      settled: () => Promise.resolve(),
      sessionChannel: (client) => `to-session:${client}`,
      gatewayChannel: (gateway) => `to-gateway:${gateway}`,
    };
    return { state, node: new MemberDelivery("i1", host, silent) };
  }

  it("one event for members on two gateways is one publish per gateway, the event spliced as it was", () => {
    const { state, node } = delivery();
    for (const [client, gateway] of [
      ["a", "g1"],
      ["b", "g2"],
      ["c", "g1"],
    ])
      node.route(client, gateway);
    node.send(event(7), ["a", "b", "c"]);
    assert.deepEqual(
      state.published.map((p) => p.channel),
      ["to-gateway:g1", "to-gateway:g2"],
    );
    const first = JSON.parse(state.published[0].payload) as { run: string };
    assert.match(first.run, /^[\w-]{10}$/);
    assert.deepEqual(first, { type: "fanout", instance: "i1", seq: 1, sessions: ["a", "c"], prev: 0, run: first.run, event: JSON.parse(event(7)) });
    // Each gateway's fanouts chain on their own: g1's next names seq 1, not g2's seq 2.
    node.send(event(8), ["b"]);
    node.send(event(9), ["c"]);
    assert.deepEqual(
      state.published.slice(2).map((p) => [p.channel, (JSON.parse(p.payload) as { seq: number; prev: number }).seq, (JSON.parse(p.payload) as { prev: number }).prev]),
      [
        ["to-gateway:g2", 2, 1],
        ["to-gateway:g1", 3, 1],
      ],
    );
    assert.ok(state.published[0].payload.endsWith(`,"event":${event(7)}}`));
  });

  it("what a gateway could not deliver is kept in the order sent, whichever answer comes first, and replayed after its barrier", async () => {
    const { state, node } = delivery();
    node.route("a", "g1");
    for (let i = 1; i <= 3; i++) node.send(event(i), ["a"]);
    await tick();
    // The gateway lost the session after event 1: its answers for 2 and 3 are still on their way.
    node.undelivered(2, ["a"], event(2));
    node.send(event(4), ["a"]); // away: kept, not sent
    node.undelivered(3, ["a"], event(3));
    const sent = state.published.length;
    assert.equal(sent, 3, "event 4 was not sent");
    const resuming = node.resume("a", "to-session:a", "g2", true);
    await tick();
    const barrier = JSON.parse(state.published.at(-1)!.payload) as { type: string; id: number };
    assert.equal(state.published.at(-1)!.channel, "to-gateway:g1");
    assert.equal(barrier.type, "barrier");
    node.undelivered(1, ["a"], event(1)); // late, but before the barrier's answer
    node.flushed(barrier.id);
    await resuming;
    const replay = JSON.parse(state.published.at(-1)!.payload) as { type: string; events: { data: number }[]; through: number };
    assert.equal(replay.type, "replay");
    assert.deepEqual(
      replay.events.map((e) => e.data),
      [1, 2, 3, 4],
    );
    // Live again, on its new gateway.
    node.send(event(5), ["a"]);
    assert.equal(state.published.at(-1)!.channel, "to-gateway:g2");
    node.ack("a", replay.through);
  });

  it("a gap a gateway reports is told to its sessions as dropped, by how many each missed; kept ones hear it in their replay", async () => {
    const { state, node } = delivery();
    node.route("a", "g1");
    node.route("b", "g1");
    node.send(event(1), ["a", "b"]); // seq 1
    node.send(event(2), ["a"]); // seq 2
    node.send(event(3), ["a", "b"]); // seq 3
    await tick();
    const run = (JSON.parse(state.published[0].payload) as { run: string }).run;
    state.published.length = 0;
    node.handle({ type: "gap", gateway: "g1", run: "another-run", after: 0, through: 3 }, "", () => true);
    assert.equal(state.published.length, 0, "a gap of another run of the instance is not this one's");
    node.handle({ type: "gap", gateway: "g1", run, after: 0, through: 2 }, "", () => true);
    await tick();
    const told = state.published.map((p) => JSON.parse(p.payload) as { sessions: string[]; event: { type: string; count: number } });
    assert.deepEqual(
      told.map((f) => [f.sessions, f.event.type, f.event.count]),
      [
        [["a"], "dropped", 2],
        [["b"], "dropped", 1],
      ],
    );
    state.published.length = 0;
    node.handle({ type: "gap", gateway: "g1", run, after: 0, through: 2 }, "", () => true);
    assert.equal(state.published.length, 0, "a gap told twice is counted once");
  });

  it("a replay numbers its events (seqs, run), so a gateway that passed a later one live can count older ones", async () => {
    const { state, node } = delivery();
    node.route("a", "g1");
    state.receivers = 0;
    node.send(event(1), ["a"]); // its gateway's subscriber was reconnecting
    state.receivers = 1;
    node.send(event(2), ["a"]); // already in flight, and it got through
    await tick();
    node.send(event(3), ["a"]); // the client is away now: kept
    const run = (JSON.parse(state.published[0].payload) as { run: string }).run;
    const resuming = node.resume("a", "to-session:a", "g1", true);
    await tick();
    node.flushed((JSON.parse(state.published.at(-1)!.payload) as { id: number }).id);
    await resuming;
    const replay = JSON.parse(state.published.at(-1)!.payload) as { type: string; events: { data: number }[]; seqs: number[]; run: string; through: number };
    assert.equal(replay.type, "replay");
    assert.deepEqual([replay.events.map((e) => e.data), replay.seqs, replay.run], [[1, 3], [1, 3], run]);
    node.ack("a", replay.through);
    node.close();
  });

  it("a fanout that reached nobody makes the node ask the gateway to resume those sessions until one hears it", async () => {
    const { state, node } = delivery();
    node.route("a", "g1");
    state.receivers = 0;
    node.send(event(1), ["a"]);
    await tick();
    await new Promise((resolve) => setTimeout(resolve, 700));
    const rewinds = state.published.filter((p) => p.payload.includes('"rewind"'));
    assert.ok(rewinds.length >= 2, `asked again while nobody heard (${rewinds.length})`);
    assert.deepEqual(JSON.parse(rewinds[0].payload), { type: "rewind", instance: "i1", sessions: ["a"] });
    assert.equal(rewinds[0].channel, "to-gateway:g1");
    // The gateway hears it and resumes the session: no more rewinds once it is back.
    state.receivers = 1;
    const resuming = node.resume("a", "to-session:a", "g1", true);
    await tick();
    const barrier = JSON.parse(state.published.at(-1)!.payload) as { id: number };
    node.flushed(barrier.id);
    await resuming;
    const replay = JSON.parse(state.published.at(-1)!.payload) as { type: string; events: { data: number }[] };
    assert.deepEqual([replay.type, replay.events.map((e) => e.data)], ["replay", [1]]);
    const count = state.published.length;
    await new Promise((resolve) => setTimeout(resolve, 600));
    assert.equal(state.published.length, count, "nothing stranded, nothing asked");
    node.close();
  });

  it("a fanout that reached no gateway is kept for every session in it; one that left is not", async () => {
    const { state, node } = delivery();
    node.route("a", "g1");
    node.route("b", "g1");
    state.receivers = 0;
    node.send(event(1), ["a", "b"]);
    await tick();
    node.discard("b");
    node.undelivered(1, ["b"], event(1));
    // g1 is still gone: the barrier reaches nobody, and the replay does not wait for it.
    await node.resume("a", "to-session:a", "g2", true);
    const replay = JSON.parse(state.published.at(-1)!.payload) as { events: { data: number }[] };
    assert.deepEqual(
      replay.events.map((e) => e.data),
      [1],
    );
    state.published.length = 0;
    await node.resume("b", "to-session:b", "g2", false);
    assert.deepEqual((JSON.parse(state.published.at(-1)!.payload) as { events: unknown[] }).events, []);
  });
});

for (const topology of TOPOLOGIES)
  describe(`fan-out per session (gateway.fanout: session) (${topology})`, () => {
    const fx = useCluster({ topology, gateways: 2, extra: { gateway: { host: "127.0.0.1", port: 0, fanout: "session" } } });

    it("a broadcast costs one publish per member, the design before fan-out, and arrives in order", async (t) => {
      const owner = await fx.cluster.raw(0);
      const instance = (await owner.request({ type: "launch", task: "echo" }, 30_000)).instance as string;
      const clients = [owner];
      for (let i = 1; i < 20; i++) clients.push(await fx.cluster.raw(i % 2));
      for (const c of clients) assert.equal((await c.request({ type: "join", instance })).type, "joined");
      const frames = clients.map((c) => record(c));
      const stats = async () => {
        const { publish, spublish } = await fx.redis.publishes();
        return publish + spublish;
      };
      const before = await stats();
      owner.send({ type: "send", instance, action: "shouts", data: { count: 20 } });
      await eventually(() => frames.every((f) => shouts(f).length === 20), "every member to get 20 shouts", 60_000);
      const perBroadcast = ((await stats()) - before - 1) / 20;
      t.diagnostic(`${topology}: ${perBroadcast} publishes per broadcast to 20 members`);
      assert.equal(perBroadcast, 20, "one publish per member");
      for (const f of frames) assert.deepEqual(shouts(f), range(0, 19));
    });
  });
