/**
 * Resume under contention and with changed rights (docs/resume.md): two connections resuming one
 * session at once (exactly one gets it, with every event it was owed, once, in order; the other
 * gets `unavailable`), and a session resumed with a ticket that no longer grants some of its
 * joins (those end: the service hears `leave` `kicked`, the client `closed` `kicked`).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { pino } from "pino";
import { ReplayGate } from "../gateway/replay-gate.js";
import { MAX_TAIL, SessionTail } from "../gateway/session-tail.js";
import { MAX_KEPT_EVENTS, MemberDelivery, type DeliveryHost } from "../nodes/member-delivery.js";
import { mintTicket } from "../src/auth/tickets.js";
import type { RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { cut, record } from "./helpers/sessions.js";
import { useCluster } from "./helpers/use-cluster.js";

const SECRET = "resume-races-secret-0123456789";

/** `shout` payloads one client received, in arrival order. */
function shouts(frames: Record<string, any>[]): number[] {
  return frames.filter((f) => f.type === "message" && f.action === "shout").map((f) => f.data.data as number);
}

describe("concurrent resumes of one session", () => {
  const fx = useCluster({ gateways: 2, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });
  const DETACHED = 50;
  const TOTAL = 150;

  for (let round = 1; round <= 5; round++) {
    it(`round ${round}: one connection wins with every event once and in order; the other gets unavailable`, async () => {
      const a = await fx.cluster.raw(0);
      const launched = await a.request({ type: "launch", task: "echo" }, 30_000);
      const instance = launched.instance as string;
      assert.equal((await a.request({ type: "join", instance })).type, "joined");
      const shouter = await fx.cluster.raw(1);
      assert.equal((await shouter.request({ type: "join", instance })).type, "joined");
      await cut(fx.cluster.gateways[0], a.session);
      for (let i = 0; i < DETACHED; i++) shouter.send({ type: "send", instance, action: "shout", data: i });
      await shouter.next((f) => f.action === "shout" && f.data.data === DETACHED - 1);

      const [b, c] = [await fx.cluster.raw(0), await fx.cluster.raw(1)];
      const frames = [record(b), record(c)];
      // Live shouts keep coming while both resumes are under way.
      const sending = (async () => {
        for (let i = DETACHED; i < TOTAL; i++) {
          shouter.send({ type: "send", instance, action: "shout", data: i });
          if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
        }
      })();
      const resume = { type: "resume", session: a.session, resume: a.welcome.resume };
      b.send({ ...resume, id: "race" });
      c.send({ ...resume, id: "race" });
      const replies = await Promise.all([b, c].map((x) => x.next((f) => f.id === "race")));
      await sending;
      const won = replies.findIndex((r) => r.type === "resumed");
      assert.ok(won >= 0, `one resume succeeds: ${JSON.stringify(replies)}`);
      const winner = [b, c][won];
      const got = frames[won];
      await eventually(
        () => shouts(got).includes(TOTAL - 1) || (got.some((f) => f.type === "dropped") && shouts(got).length > 0 && shouts(got).at(-1) === TOTAL - 1),
        "the last shout at the winner",
        20_000,
      );
      const seen = shouts(got);
      const dropped = got.filter((f) => f.type === "dropped").reduce((n, f) => n + (f.count as number), 0);
      assert.deepEqual(
        [...seen].sort((x, y) => x - y),
        seen,
        "in order",
      );
      assert.equal(new Set(seen).size, seen.length, "each once");
      assert.ok(
        seen.length + dropped >= TOTAL,
        `every shout arrived or was counted: got ${seen.length}, dropped ${dropped}, missing ${JSON.stringify(Array.from({ length: TOTAL }, (_, i) => i).filter((i) => !seen.includes(i)))}`,
      );
      assert.equal(dropped, 0, "nothing had to be dropped here");
      const lost = replies[1 - won];
      assert.deepEqual({ type: lost.type, code: lost.code }, { type: "error", code: "unavailable" }, JSON.stringify(lost));
      assert.match(lost.message as string, /being resumed by another connection/);
      assert.equal(winner.closeCode, null, "the winner keeps the session");
      assert.deepEqual(shouts(frames[1 - won]), [], "the loser forwarded nothing");
      assert.equal((await winner.request({ type: "stop", instance })).type, "stopped");
    });
  }

  it("a resume cut short before its gateway acknowledged the replay: the next resume gets the kept events again", async () => {
    const a = await fx.cluster.raw(0);
    const { instance } = await a.request({ type: "launch", task: "echo" }, 30_000);
    assert.equal((await a.request({ type: "join", instance })).type, "joined");
    const shouter = await fx.cluster.raw(1);
    assert.equal((await shouter.request({ type: "join", instance })).type, "joined");
    await cut(fx.cluster.gateways[0], a.session);
    for (let i = 0; i < 20; i++) shouter.send({ type: "send", instance, action: "shout", data: i });
    await shouter.next((f) => f.action === "shout" && f.data.data === 19);
    // Gateway 1 passes the replay on, but its ack never reaches the node (as if it died right then).
    const redis = fx.cluster.gateways[1]["redis"];
    const publish = redis.publish.bind(redis);
    redis.publish = (channel: string, payload: string) => (payload.includes('"type":"ack"') ? Promise.resolve(1) : publish(channel, payload));
    try {
      const b = await fx.cluster.raw(1);
      const first = record(b);
      assert.equal((await b.request({ type: "resume", session: a.session, resume: a.welcome.resume })).type, "resumed");
      await eventually(() => shouts(first).length === 20, "the replay at the first resume");
      await cut(fx.cluster.gateways[1], a.session);
    } finally {
      redis.publish = publish;
    }
    for (let i = 20; i < 25; i++) shouter.send({ type: "send", instance, action: "shout", data: i });
    await shouter.next((f) => f.action === "shout" && f.data.data === 24);
    const c = await fx.cluster.raw(0);
    const again = record(c);
    assert.equal((await c.request({ type: "resume", session: a.session, resume: a.welcome.resume })).type, "resumed");
    await eventually(() => shouts(again).includes(24), "the last shout at the second resume");
    assert.deepEqual(
      shouts(again),
      Array.from({ length: 25 }, (_, i) => i),
      "the unacknowledged ones again, then the newer ones",
    );
    assert.equal((await c.request({ type: "stop", instance })).type, "stopped");
  });

  it("events past a detaching gateway's tail bound reach the resumed client as dropped", async () => {
    const a = await fx.cluster.raw(0);
    const { instance } = await a.request({ type: "launch", task: "echo" }, 30_000);
    assert.equal((await a.request({ type: "join", instance })).type, "joined");
    const sessions = fx.cluster.gateways[0]["sessions"];
    const held = [...sessions.values()].find((s) => s.id === a.session)!;
    // The moment between a connection's end and its unsubscribe, stretched: 1 003 events arrive in it.
    await held.onClose(false);
    for (let i = 0; i < 1_003; i++) held.onBus(JSON.stringify({ type: "message", instance, action: "shout", data: { data: i } }));
    await held.detached();
    held["ws"].terminate();
    await eventually(() => ![...sessions.values()].includes(held), "the gateway to let the session go");
    const b = await fx.cluster.raw(1);
    assert.equal((await b.request({ type: "resume", session: a.session, resume: a.welcome.resume })).type, "resumed");
    assert.deepEqual(await b.next((f) => f.type === "dropped"), { type: "dropped", instance, count: 3 });
    assert.equal(b.frames.filter((f) => f.action === "shout").length, 1_000, "the kept ones came first");
    assert.equal((await b.request({ type: "stop", instance })).type, "stopped");
  });
});

describe("resume re-checks the joins against the new ticket", () => {
  const fx = useCluster({ gateways: 2, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 }, auth: { secret: SECRET } } });
  const ticket = async (sub: string, extra: Record<string, unknown> = {}) => (await mintTicket(SECRET, { sub, ...extra })).ticket;

  /** Carol's instance (allow: carol), with carol joined; `dave` joins it with `first` and drops. */
  async function davesJoin(first: string, options: Record<string, unknown> = { allow: ["carol"] }) {
    const carol = await fx.cluster.raw(1, await ticket("carol", { tasks: ["echo"] }));
    const launched = await carol.request({ type: "launch", task: "echo", options }, 30_000);
    assert.equal(launched.type, "launched", JSON.stringify(launched));
    const instance = launched.instance as string;
    assert.equal((await carol.request({ type: "join", instance })).type, "joined");
    const dave = await fx.cluster.raw(0, first);
    assert.equal((await dave.request({ type: "join", instance })).type, "joined");
    // Dave also launches and joins an instance of his own: that join is his by ownership.
    const own = await dave.request({ type: "launch", task: "echo", options: { closeOnOwnerLeave: true } }, 30_000);
    assert.equal(own.type, "launched", JSON.stringify(own));
    assert.equal((await dave.request({ type: "join", instance: own.instance })).type, "joined");
    await cut(fx.cluster.gateways[0], dave.session);
    return { carol, instance, own: own.instance as string, dave };
  }

  async function resumeWith(second: string, dave: RawClient) {
    const again = await fx.cluster.raw(1, second);
    const frames = record(again);
    const resumed = await again.request({ type: "resume", session: dave.session, resume: dave.welcome.resume });
    return { again, frames, resumed };
  }

  for (const [what, first, second, options] of [
    ["an admin ticket resumed with a plain one, on an instance that allows carol only", { admin: true }, {}, { allow: ["carol"] }],
    ["a ticket for every instance resumed with one for `other` only", {}, { instances: ["other"] }, {}],
  ] as const) {
    it(`${what}: the refused join ends (kicked); the owned one stays`, async () => {
      const { carol, instance, own, dave } = await davesJoin(await ticket("dave", { tasks: ["echo"], ...first }), options);
      const { again, frames, resumed } = await resumeWith(await ticket("dave", { tasks: ["echo"], ...second }), dave);
      assert.equal(resumed.type, "resumed", JSON.stringify(resumed));
      assert.deepEqual(resumed.instances, [own], "only the join the new ticket allows is listed");
      await eventually(() => frames.some((f) => f.type === "closed"), "closed for the refused join");
      const at = (f: (x: Record<string, any>) => boolean) => frames.findIndex(f);
      assert.deepEqual(frames[at((f) => f.type === "closed")], { type: "closed", instance, reason: "kicked" });
      assert.ok(at((f) => f.type === "resumed") < at((f) => f.type === "closed"), "closed comes after resumed");
      const refused = await again.request({ type: "send", instance, action: "echo", data: "sneaky" });
      assert.equal(refused.code, "not_joined", JSON.stringify(refused));
      const left = await carol.next((f) => f.action === "member-left" && f.data.client === dave.session);
      assert.deepEqual(left.data, { client: dave.session, reason: "kicked" });
      // The owned instance is still joined, and still his to stop.
      again.send({ type: "send", instance: own, action: "whoami" });
      assert.equal((await again.next((f) => f.action === "whoami")).data.client, dave.session);
      assert.equal((await again.request({ type: "stop", instance: own })).type, "stopped");
      assert.equal((await carol.request({ type: "stop", instance })).type, "stopped");
    });
  }

  it("a resume with the same rights keeps every join", async () => {
    const daveTicket = await ticket("dave", { tasks: ["echo"] });
    const { carol, instance, own, dave } = await davesJoin(daveTicket, {});
    const { again, resumed } = await resumeWith(daveTicket, dave);
    assert.deepEqual([...(resumed.instances as string[])].sort(), [instance, own].sort());
    again.send({ type: "send", instance, action: "whoami" });
    assert.equal((await again.next((f) => f.action === "whoami")).data.client, dave.session);
    assert.equal((await again.request({ type: "stop", instance: own })).type, "stopped");
    assert.equal((await carol.request({ type: "stop", instance })).type, "stopped");
  });
});

describe("what a resume keeps, without a cluster", () => {
  const silent = pino({ level: "silent" });
  /** A node's delivery whose session channel has `receivers` subscribers; what it published. */
  function delivery() {
    const state = { receivers: 0, published: [] as string[] };
    const host: DeliveryHost = {
      publishCounted: () => Promise.resolve(state.receivers),
      publish: (_channel, payload) => void state.published.push(payload),
      settled: async () => {},
      sessionChannel: (client) => `to-session:${client}`,
      gatewayChannel: (gateway) => `to-gateway:${gateway}`,
    };
    return { state, kept: new MemberDelivery("i1", host, silent) };
  }
  const tick = () => new Promise((resolve) => setImmediate(resolve));
  const event = (n: number) => JSON.stringify({ type: "message", instance: "i1", action: "shout", data: n });
  async function replay(d: MemberDelivery, state: { published: string[] }) {
    await d.resume("c1", "reply", undefined, true);
    return JSON.parse(state.published.pop()!) as { through: number; dropped: number; events: { data: number }[] };
  }

  it("the node keeps replayed events until the ack: a resume cut short gets them again, with newer ones", async () => {
    const { state, kept } = delivery();
    for (let i = 0; i < 3; i++) kept.deliver("c1", event(i));
    await tick();
    const first = await replay(kept, state);
    assert.deepEqual([first.events.map((e) => e.data), first.through], [[0, 1, 2], 3]);
    // No ack (the resume was cut short); one more reaches nobody.
    kept.deliver("c1", event(3));
    await tick();
    const second = await replay(kept, state);
    assert.deepEqual([second.events.map((e) => e.data), second.through], [[0, 1, 2, 3], 4]);
    kept.ack("c1", 3);
    kept.ack("c1", 2); // late, repeated: frees nothing more
    const third = await replay(kept, state);
    assert.deepEqual([third.events.map((e) => e.data), third.through], [[3], 4]);
    kept.ack("c1", 4);
    const last = await replay(kept, state);
    assert.deepEqual([last.events, last.dropped, last.through], [[], 0, 0]);
    // A new box counts on from there: an ack meant for the old one frees nothing of it.
    kept.deliver("c1", event(4));
    await tick();
    kept.ack("c1", 4);
    const fresh = await replay(kept, state);
    assert.deepEqual([fresh.events.map((e) => e.data), fresh.through], [[4], 5]);
  });

  it("dropped events are positions too, reported once per replay and freed by the ack", async () => {
    const { state, kept } = delivery();
    for (let i = 0; i < MAX_KEPT_EVENTS + 2; i++) kept.deliver("c1", event(i));
    await tick();
    const first = await replay(kept, state);
    assert.deepEqual([first.events.length, first.dropped, first.through], [MAX_KEPT_EVENTS, 2, MAX_KEPT_EVENTS + 2]);
    // Live again, before the ack: no second `dropped` for what the replay reported.
    state.receivers = 1;
    kept.deliver("c1", event(-1));
    await tick();
    assert.equal(state.published.length, 0);
    kept.ack("c1", first.through);
    const after = await replay(kept, state);
    assert.deepEqual([after.events, after.dropped, after.through], [[], 0, 0], "all freed");
  });

  it("a replayed event older than one already passed on live is counted, not sent out of order", () => {
    const sent: string[] = [];
    const gate = new ReplayGate(
      ["i1"],
      { send: (t) => void sent.push(t), notMember: () => {}, ack: () => {}, alive: () => true, finished: () => {}, liveSeq: (_i, run) => (run === "r1" ? 13 : 0), replayedThrough: () => {} },
      silent,
    );
    gate.open();
    const event = (n: number) => ({ type: "message", instance: "i1", action: "a", data: n });
    // Event 12 was kept (its fanout reached nobody) while 13 reached the client live.
    assert.ok(gate.intercept(JSON.stringify({ type: "replay", instance: "i1", member: true, dropped: 0, through: 3, events: [event(12), event(14)], seqs: [12, 14], run: "r1" })));
    assert.deepEqual(
      sent.map((t) => JSON.parse(t) as Record<string, unknown>),
      [event(14), { type: "dropped", instance: "i1", count: 1 }],
    );
  });

  it("a live fanout held behind a replay but older than its newest event is counted, not sent after it", () => {
    const sent: string[] = [];
    const through: Array<[string, string, number]> = [];
    const gate = new ReplayGate(
      ["i1"],
      { send: (t) => void sent.push(t), notMember: () => {}, ack: () => {}, alive: () => true, finished: () => {}, liveSeq: () => 0, replayedThrough: (i, r, n) => void through.push([i, r, n]) },
      silent,
    );
    gate.open();
    const event = (n: number) => ({ type: "message", instance: "i1", action: "a", data: n });
    // Fanout 12 was in flight (a cluster's retries) while 13 and 14 were kept; it comes first, held.
    assert.ok(gate.intercept(JSON.stringify(event(12)), { run: "r1", seq: 12 }));
    assert.ok(gate.intercept(JSON.stringify(event(15)), { run: "r1", seq: 15 }));
    assert.ok(gate.intercept(JSON.stringify({ type: "replay", instance: "i1", member: true, dropped: 0, through: 2, events: [event(13), event(14)], seqs: [13, 14], run: "r1" })));
    assert.deepEqual(
      sent.map((t) => JSON.parse(t) as Record<string, unknown>),
      [event(13), event(14), { type: "dropped", instance: "i1", count: 1 }, event(15)],
    );
    assert.deepEqual(through, [["i1", "r1", 14]]);
  });

  it("a gate acks a replay only once passed on; abandoned, it counts what it can no longer order", () => {
    const sent: string[] = [];
    const acks: [string, number][] = [];
    let alive = true;
    let finished = 0;
    const gate = new ReplayGate(
      ["i1", "i2", "i3"],
      { send: (t) => void sent.push(t), notMember: () => {}, ack: (i, n) => void acks.push([i, n]), alive: () => alive, finished: () => void finished++, liveSeq: () => 0, replayedThrough: () => {} },
      silent,
    );
    const replayOf = (instance: string, n: number) => JSON.stringify({ type: "replay", instance, member: true, dropped: 0, through: n, events: [{ type: "message", instance, action: "a", data: n }] });
    const live = (instance: string) => JSON.stringify({ type: "message", instance, action: "live", data: null });
    assert.ok(gate.intercept(live("i1")));
    assert.ok(gate.intercept(replayOf("i1", 5)));
    gate.open();
    assert.deepEqual(acks, [["i1", 5]]);
    assert.deepEqual(
      sent.map((t) => JSON.parse(t).action),
      ["a", "live"],
      "kept first, then the held live event",
    );
    assert.ok(gate.intercept(live("i2")));
    alive = false;
    assert.ok(gate.intercept(replayOf("i3", 7)));
    assert.deepEqual(acks, [["i1", 5]], "a closing connection acks nothing");
    gate.abandon();
    assert.ok(gate.intercept(live("i2")));
    assert.ok(gate.intercept(replayOf("i2", 9)), "swallowed, left with its node");
    assert.equal(gate.intercept(live("i1")), false, "i1 had replayed: its events go on as usual");
    assert.deepEqual([...gate.lost()], [["i2", 2]]);
    assert.equal(finished, 0);
    assert.equal(sent.length, 2);
  });

  it("a detaching session's tail counts what did not fit, per instance, as dropped", () => {
    const tail = new SessionTail(silent);
    for (let i = 0; i < MAX_TAIL; i++) tail.push(event(i));
    assert.ok(tail.full);
    for (let i = 0; i < 3; i++) tail.overflow(event(MAX_TAIL + i));
    tail.overflow(JSON.stringify({ type: "closed", instance: "i2", reason: "stopped" }));
    const entries = tail.entries(
      new Map([
        ["i3", 4],
        ["i1", 1],
      ]),
    );
    assert.equal(entries.length, MAX_TAIL + 3);
    assert.deepEqual(
      entries.slice(MAX_TAIL).map((e) => JSON.parse(e)),
      [
        { type: "dropped", instance: "i1", count: 4 },
        { type: "dropped", instance: "i2", count: 1 },
        { type: "dropped", instance: "i3", count: 4 },
      ],
    );
  });
});
