/**
 * Resume under contention and with changed rights (docs/resume.md): two connections resuming one
 * session at once (exactly one gets it, with every event it was owed, once, in order; the other
 * gets `unavailable`), and a session resumed with a ticket that no longer grants some of its
 * joins (those end: the service hears `leave` `kicked`, the client `closed` `kicked`).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { WebSocket } from "ws";
import type { Gateway } from "../gateway/gateway.js";
import type { ClientSession } from "../gateway/session.js";
import { mintTicket } from "../src/auth/tickets.js";
import type { RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

const SECRET = "resume-races-secret-0123456789";

/** Cuts a session's socket on the gateway's side (the client sees 1006) and waits until the gateway let it go. */
async function cut(gateway: Gateway, session: string): Promise<void> {
  const sessions = gateway["sessions"] as Map<string, ClientSession>;
  const held = [...sessions.values()].find((s) => s.id === session);
  assert.ok(held, `gateway holds session ${session}`);
  (held["ws"] as WebSocket).terminate();
  await eventually(() => ![...sessions.values()].includes(held), "the gateway to let the session go");
}

/** Frames a raw client receives from now on. */
function record(client: RawClient): Record<string, any>[] {
  const frames: Record<string, any>[] = [];
  client.ws.on("message", (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, any>));
  return frames;
}

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
      await cut(fx.cluster.gateways[0]!, a.session);
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
      const winner = [b, c][won]!;
      const got = frames[won]!;
      await eventually(
        () => shouts(got).includes(TOTAL - 1) || (got.some((f) => f.type === "dropped") && shouts(got).length > 0 && shouts(got).at(-1) === TOTAL - 1),
        "the last shout at the winner",
        20_000,
      );
      const seen = shouts(got);
      const dropped = got.filter((f) => f.type === "dropped").reduce((n, f) => n + (f.count as number), 0);
      assert.deepEqual([...seen].sort((x, y) => x - y), seen, "in order");
      assert.equal(new Set(seen).size, seen.length, "each once");
      assert.ok(seen.length + dropped >= TOTAL, `every shout arrived or was counted: got ${seen.length}, dropped ${dropped}, missing ${JSON.stringify(Array.from({ length: TOTAL }, (_, i) => i).filter((i) => !seen.includes(i)))}`);
      assert.equal(dropped, 0, "nothing had to be dropped here");
      const lost = replies[1 - won]!;
      assert.deepEqual({ type: lost.type, code: lost.code }, { type: "error", code: "unavailable" }, JSON.stringify(lost));
      assert.match(lost.message as string, /being resumed by another connection/);
      assert.equal(winner.closeCode, null, "the winner keeps the session");
      assert.deepEqual(shouts(frames[1 - won]!), [], "the loser forwarded nothing");
      assert.equal((await winner.request({ type: "stop", instance })).type, "stopped");
    });
  }
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
    await cut(fx.cluster.gateways[0]!, dave.session);
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
