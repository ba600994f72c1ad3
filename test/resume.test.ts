/**
 * Session resume (docs/protocol.md#resume, docs/resume.md): a client whose connection dropped, or whose gateway died,
 * takes its session back on another gateway: still joined, the service sees no leave, and what
 * the service sent meanwhile arrives after `resumed`, in order; what could not be kept is
 * reported as `dropped`. Gateways here are real (one is a separate `servman gateway` process,
 * killed with SIGKILL), and so are the node and its processes.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ServmanClient } from "../src/client/servman-client.js";
import { MAX_KEPT_EVENTS } from "../nodes/member-delivery.js";
import { cliEnv, freePort, startServer, type ServerProcess } from "./helpers/cli.js";
import { type RawClient, writeConfig, testTasks } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { cut, record } from "./helpers/sessions.js";
import { TOPOLOGIES } from "./helpers/redis-topology.js";
import { useCluster } from "./helpers/use-cluster.js";

/** `shout` payloads one client received, in arrival order. */
function shouts(frames: Record<string, any>[]): number[] {
  return frames.filter((f) => f.type === "message" && f.action === "shout").map((f) => f.data.data as number);
}

/** `promise`, or a failure naming `what` after `ms`: an event that never comes fails its test instead of hanging the file. */
function within<T>(promise: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** Numbers first..last, for comparing whole sequences. */
function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

for (const topology of TOPOLOGIES)
  describe(`session resume (${topology})`, () => {
    const fx = useCluster({ topology, gateways: 2, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });

    /** A client joined to a fresh echo instance on gateway `gw`, with a second client (the shouter) joined too. */
    async function joinedPair(gw = 0): Promise<{ instance: string; a: RawClient; welcome: Record<string, any>; shouter: RawClient }> {
      const a = await fx.cluster.raw(gw);
      const welcome = a.welcome;
      const launched = await a.request({ type: "launch", task: "echo" }, 30_000);
      assert.equal(launched.type, "launched", JSON.stringify(launched));
      assert.equal((await a.request({ type: "join", instance: launched.instance })).type, "joined");
      const shouter = await fx.cluster.raw(1);
      assert.equal((await shouter.request({ type: "join", instance: launched.instance })).type, "joined");
      return { instance: launched.instance, a, welcome, shouter };
    }

    it("resumes on another gateway after a dropped connection: kept messages first, in order, no leave seen", async () => {
      const { instance, welcome, shouter } = await joinedPair(0);
      await cut(fx.cluster.gateways[0], welcome.session);
      // Sent while no gateway holds the session: the node keeps them.
      for (let i = 0; i < 50; i++) shouter.send({ type: "send", instance, action: "shout", data: i });
      await shouter.next((f) => f.action === "shout" && f.data.data === 49);
      const b = await fx.cluster.raw(1);
      const frames = record(b);
      // More shouts while the resume is under way: they must come after the kept ones.
      const sending = (async () => {
        for (let i = 50; i < 150; i++) {
          shouter.send({ type: "send", instance, action: "shout", data: i });
          if (i % 10 === 0) await new Promise((r) => setTimeout(r, 1));
        }
      })();
      const resumed = await b.request({ type: "resume", session: welcome.session, resume: welcome.resume });
      assert.deepEqual(resumed, { type: "resumed", id: resumed.id, session: welcome.session, instances: [instance], acked: 0 });
      await sending;
      await eventually(() => shouts(frames).length === 150, "150 shouts after the resume", 20_000);
      assert.deepEqual(shouts(frames), range(0, 149), "every shout, once, in order");
      // Still joined under the same session, as the service sees it.
      b.send({ type: "send", instance, action: "leavesSoFar" });
      const leaves = await b.next((f) => f.action === "leaves");
      assert.deepEqual(leaves.data.leaves, [], "the service saw no leave");
      b.send({ type: "send", instance, action: "whoami" });
      assert.equal((await b.next((f) => f.action === "whoami")).data.client, welcome.session);
      assert.equal((await b.request({ type: "stop", instance })).type, "stopped", "the resumed session still owns its instance");
    });

    it("takes the session from a connection that is still open, which is closed with 4000", async () => {
      const { instance, a, welcome, shouter } = await joinedPair(0);
      const b = await fx.cluster.raw(0);
      const resumed = await b.request({ type: "resume", session: welcome.session, resume: welcome.resume });
      assert.equal(resumed.type, "resumed", JSON.stringify(resumed));
      await eventually(() => a.closeCode === 4000, "the old connection closed with 4000");
      shouter.send({ type: "send", instance, action: "shout", data: 7 });
      assert.equal((await b.next((f) => f.action === "shout")).data.data, 7);
      await b.request({ type: "stop", instance });
    });

    it("refuses a wrong token, and a second resume of the same session gets the session only once", async () => {
      const { instance, welcome } = await joinedPair(0);
      await cut(fx.cluster.gateways[0], welcome.session);
      const wrong = await fx.cluster.raw(1);
      const refused = await wrong.request({ type: "resume", session: welcome.session, resume: "not-the-token" });
      assert.equal(refused.code, "forbidden");
      const [b, c] = [await fx.cluster.raw(0), await fx.cluster.raw(1)];
      const replies = await Promise.all([b, c].map((x) => x.request({ type: "resume", session: welcome.session, resume: welcome.resume })));
      // Both may succeed in turn (the later takes the session over), but one connection ends up with it.
      assert.ok(
        replies.some((r) => r.type === "resumed"),
        JSON.stringify(replies),
      );
      for (const r of replies) if (r.type !== "resumed") assert.equal(r.code, "unavailable", JSON.stringify(r));
      const holders = () => [b, c].filter((x, i) => replies[i].type === "resumed" && x.closeCode === null);
      await eventually(() => holders().length === 1, "exactly one connection holds the session");
      for (const [i, x] of [b, c].entries()) if (replies[i].type === "resumed" && x.closeCode !== null) assert.equal(x.closeCode, 4000);
      assert.equal((await holders()[0].request({ type: "stop", instance })).type, "stopped");
    });

    it("reports events past the node's bound as dropped, after the kept ones", async () => {
      const { instance, welcome, shouter } = await joinedPair(0);
      await cut(fx.cluster.gateways[0], welcome.session);
      const total = MAX_KEPT_EVENTS + 200;
      for (let i = 0; i < total; i++) shouter.send({ type: "send", instance, action: "shout", data: i });
      await shouter.next((f) => f.action === "shout" && f.data.data === total - 1, 30_000);
      const b = await fx.cluster.raw(1);
      const frames = record(b);
      assert.equal((await b.request({ type: "resume", session: welcome.session, resume: welcome.resume })).type, "resumed");
      const dropped = await b.next((f) => f.type === "dropped", 20_000);
      assert.deepEqual(dropped, { type: "dropped", instance, count: 200 });
      assert.deepEqual(shouts(frames), range(0, MAX_KEPT_EVENTS - 1), "the first events were kept, gapless");
      await b.request({ type: "stop", instance });
    });

    it("tells a resumed client how an instance that ended meanwhile ended", async () => {
      const { instance, welcome, shouter } = await joinedPair(0);
      await cut(fx.cluster.gateways[0], welcome.session);
      shouter.send({ type: "send", instance, action: "stop-yourself" });
      await shouter.next((f) => f.type === "closed");
      const b = await fx.cluster.raw(1);
      const frames = record(b);
      const resumed = await b.request({ type: "resume", session: welcome.session, resume: welcome.resume });
      assert.deepEqual(resumed.instances, []);
      await eventually(() => frames.some((f) => f.type === "closed"), "closed");
      assert.deepEqual(
        frames.find((f) => f.type === "closed"),
        { type: "closed", instance, reason: "stopped" },
      );
    });

    it("SDK: reconnects by itself, resumes and re-sends what was queued", async () => {
      const { instance, shouter } = await joinedPair(0);
      const client = new ServmanClient([fx.cluster.gateways[0].url, fx.cluster.gateways[1].url], { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
      await client.connect();
      await client.join(instance);
      const got: number[] = [];
      client.handle("shout", (_i, data) => got.push((data as { data: number }).data));
      const echoes: unknown[] = [];
      client.handle("echo", (_i, data) => echoes.push(data));
      const resumed = new Promise<string[]>((resolve) => client.on("resumed", (instances) => resolve(instances)));
      await cut(fx.cluster.gateways[0], client.session);
      client.send(instance, "echo", "queued while away");
      for (let i = 0; i < 20; i++) shouter.send({ type: "send", instance, action: "shout", data: i });
      assert.deepEqual(await within(resumed, "resumed"), [instance]);
      await eventually(() => got.length === 20 && echoes.length === 1, "shouts and the queued echo");
      assert.deepEqual(got, range(0, 19));
      assert.deepEqual(echoes, ["queued while away"]);
      await client.close();
      await shouter.request({ type: "stop", instance });
    });

    it("SDK: a client whose session another connection took is not reconnected (4000)", async () => {
      const shouter = await fx.cluster.raw(1);
      const { instance } = await shouter.request({ type: "launch", task: "echo" }, 30_000);
      const client = new ServmanClient([fx.cluster.gateways[0].url, fx.cluster.gateways[1].url], { reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
      await client.connect();
      await client.join(instance as string);
      const events: string[] = [];
      client.on("reconnecting", () => events.push("reconnecting"));
      const disconnected = new Promise<number>((resolve) => client.on("disconnect", (code) => resolve(code)));
      const thief = await fx.cluster.raw(1);
      const resumed = await thief.request({ type: "resume", session: client.session, resume: client.resumeToken });
      assert.equal(resumed.type, "resumed");
      assert.equal(await within(disconnected, "disconnect"), 4000);
      assert.deepEqual(events, [], "no attempt to take the session back");
      thief.send({ type: "send", instance, action: "whoami" });
      assert.equal((await thief.next((f) => f.action === "whoami")).data.client, client.session, "the thief holds the session, still joined");
      assert.equal((await shouter.request({ type: "stop", instance })).type, "stopped");
    });

    it("SDK: a draining gateway (1001) sends its clients to another, which resumes them", async () => {
      const shouter = await fx.cluster.raw(1);
      const launched = await shouter.request({ type: "launch", task: "echo" }, 30_000);
      const instance = launched.instance as string;
      await shouter.request({ type: "join", instance });
      const client = new ServmanClient([fx.cluster.gateways[0].url, fx.cluster.gateways[1].url], { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
      await client.connect();
      await client.join(instance);
      const got: number[] = [];
      client.handle("shout", (_i, data) => got.push((data as { data: number }).data));
      const codes: number[] = [];
      client.on("reconnecting", (_attempt, _delay, code) => codes.push(code));
      const resumed = new Promise<string[]>((resolve) => client.on("resumed", (instances) => resolve(instances)));
      const draining = fx.cluster.gateways[0].drain(2_000);
      for (let i = 0; i < 20; i++) shouter.send({ type: "send", instance, action: "shout", data: i });
      assert.deepEqual(await within(resumed, "resumed"), [instance]);
      await draining;
      await eventually(() => got.length === 20, "20 shouts");
      assert.deepEqual(got, range(0, 19));
      assert.equal(codes[0], 1001);
      await client.close();
      await shouter.request({ type: "stop", instance });
    });
  });

for (const topology of TOPOLOGIES)
  describe(`session resume after a gateway is killed (${topology})`, () => {
    /** Gateway processes the tests start; ended before the fixture checks that no process is left. */
    const servers: ServerProcess[] = [];
    after(async () => {
      await Promise.all(servers.map((s) => s.stop("SIGKILL")));
    });
    const fx = useCluster({ topology, gateways: 1, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 1_500 } } });
    let victim: ServerProcess | undefined;
    let victimUrl = "";

    before(async () => {
      const port = await freePort();
      const config = writeConfig({ redis: fx.redis.url, prefix: "t", gateway: { host: "127.0.0.1", port, resumeWindowMs: 1_500 }, tasks: testTasks() });
      victim = await startServer(["gateway", "--config", config], { env: cliEnv() });
      servers.push(victim);
      victimUrl = `ws://127.0.0.1:${port}/v1/connect`;
    });

    it("SIGKILL of the gateway: the SDK resumes on the other one with every message, then the window ends an abandoned session", async () => {
      const client = new ServmanClient([victimUrl, fx.cluster.gateways[0].url], { reconnect: { initialDelayMs: 50, maxDelayMs: 300 } });
      await client.connect();
      const { instance } = await client.launch("echo", { options: { closeOnOwnerLeave: true } });
      await client.join(instance);
      const shouter = await fx.cluster.raw(0);
      assert.equal((await shouter.request({ type: "join", instance })).type, "joined");
      const got: number[] = [];
      client.handle("shout", (_i, data) => got.push((data as { data: number }).data));
      let resumedAt = 0;
      const resumed = new Promise<string[]>((resolve) =>
        client.on("resumed", (instances) => {
          resumedAt = Date.now();
          resolve(instances);
        }),
      );
      const killedAt = Date.now();
      assert.equal(await victim!.stop("SIGKILL"), null);
      for (let i = 0; i < 30; i++) shouter.send({ type: "send", instance, action: "shout", data: i });
      assert.deepEqual(await within(resumed, "resumed"), [instance]);
      await eventually(() => got.length === 30, "30 shouts after the resume");
      assert.deepEqual(got, range(0, 29));
      client.send(instance, "leavesSoFar");
      const leaves = await new Promise<unknown>((resolve) => client.handle("leaves", (_i, data) => resolve(data)));
      assert.deepEqual((leaves as { leaves: unknown[] }).leaves, [], "the service saw no leave");
      process.stderr.write(`# resume after gateway SIGKILL: ${resumedAt - killedAt} ms\n`);

      // Now the client vanishes for good (its socket cut, nobody resumes): after the window the
      // service hears `disconnected`, and the instance launched with closeOnOwnerLeave is stopped.
      const reconnecting = new Promise((resolve) => client.on("reconnecting", resolve));
      await cut(fx.cluster.gateways[0], client.session);
      await within(reconnecting, "reconnecting");
      await client.close();
      const left = await shouter.next((f) => f.action === "member-left", 20_000);
      assert.deepEqual(left.data, { client: client.session, reason: "disconnected" });
      assert.deepEqual(await shouter.next((f) => f.type === "closed", 20_000), { type: "closed", instance, reason: "stopped" });
    });

    it("SIGKILL of the gateway with nobody resuming: the dead gateway is reaped and its session ends", async () => {
      const port = await freePort();
      const config = writeConfig({ redis: fx.redis.url, prefix: "t", gateway: { host: "127.0.0.1", port, resumeWindowMs: 1_500 }, tasks: testTasks() });
      const doomed = await startServer(["gateway", "--config", config], { env: cliEnv() });
      servers.push(doomed);
      const client = new ServmanClient(`ws://127.0.0.1:${port}/v1/connect`, { reconnect: false });
      await client.connect();
      const shouter = await fx.cluster.raw(0);
      const { instance } = await shouter.request({ type: "launch", task: "echo" }, 30_000);
      await shouter.request({ type: "join", instance });
      await client.join(instance as string);
      const killedAt = Date.now();
      await doomed.stop("SIGKILL");
      // Noticed once its liveness key expires (6 s) and is confirmed missing (2 s), then the window.
      const left = await shouter.next((f) => f.action === "member-left", 60_000);
      assert.deepEqual(left.data, { client: client.session, reason: "disconnected" });
      process.stderr.write(`# session of a killed gateway ended after ${Date.now() - killedAt} ms (window 1500 ms)\n`);
      await client.close();
      await shouter.request({ type: "stop", instance });
    });
  });
