/**
 * The client SDK's numbered sends and saved sessions (docs/resume.md#what-a-client-sends,
 * docs/resume.md#a-page-reload): sends made into a connection whose gateway was just SIGKILLed
 * reach the service once, in order, after the SDK resumed on another gateway; the kept sends stay
 * bounded; a second `ServmanClient` takes a saved session back. Real gateways (the victim a
 * separate process), node and services.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ServmanClient } from "../src/client/servman-client.js";
import { startGatewayProcess, type ServerProcess } from "./helpers/cli.js";
import { eventually } from "./helpers/processes.js";
import { cut } from "./helpers/sessions.js";
import { TOPOLOGIES } from "./helpers/redis-topology.js";
import { useCluster } from "./helpers/use-cluster.js";

/** `promise`, or a failure naming `what` after `ms`. */
function within<T>(promise: Promise<T>, what: string, ms = 20_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** What the instance's service received through `note`, asked through `client`. */
async function notes(client: ServmanClient, instance: string): Promise<unknown[]> {
  const reply = new Promise<unknown[]>((resolve) => {
    const off = client.instance(instance).on("notes", (data) => {
      off();
      resolve(data as unknown[]);
    });
  });
  client.send(instance, "notesSoFar");
  return within(reply, "notes");
}

/** The next `event` of `client`, as its arguments. */
function once<E extends "resumed" | "reset" | "sendsLost" | "reconnecting">(client: ServmanClient, event: E): Promise<unknown[]> {
  return new Promise((resolve) => {
    const off = client.on(event, (...args: unknown[]) => {
      off();
      resolve(args);
    });
  });
}

for (const topology of TOPOLOGIES)
  describe(`client sends into a killed gateway (${topology})`, () => {
    const servers: ServerProcess[] = [];
    after(async () => {
      await Promise.all(servers.map((s) => s.stop("SIGKILL")));
    });
    const fx = useCluster({ topology, gateways: 1, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });

    /** Gateway processes to SIGKILL, one per test, started together (each takes seconds to start). */
    const victims: { server: ServerProcess; url: string }[] = [];
    before(async () => {
      victims.push(...(await Promise.all([0, 1].map(() => startGatewayProcess(fx.redis.url, 30_000, servers)))));
    });
    const victim = () => victims.shift()!;

    it("20 sends made after the SIGKILL, before the SDK noticed, reach the service once, in order", async () => {
      const { server, url } = victim();
      const client = new ServmanClient([url, fx.cluster.gateways[0].url], { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
      await client.connect();
      const { instance } = await client.launch("echo", { join: true });
      for (let i = 0; i < 5; i++) client.send(instance, "note", `before ${i}`);
      await eventually(async () => (await notes(client, instance)).length === 5, "5 notes before the kill");
      const resumed = once(client, "resumed");
      const lost: unknown[] = [];
      client.on("sendsLost", (count) => lost.push(count));
      let noticed = false;
      client.on("reconnecting", () => (noticed = true));
      server.child.kill("SIGKILL");
      // Into the connection of a gateway that is dying or dead: the SDK has not seen its close yet.
      for (let i = 0; i < 20; i++) client.send(instance, "note", i);
      assert.equal(noticed, false, "the sends went out before the SDK saw the close");
      assert.equal(await server.stop(), null);
      assert.deepEqual((await within(resumed, "resumed"))[0], [instance]);
      const expected = [...Array.from({ length: 5 }, (_, i) => `before ${i}`), ...Array.from({ length: 20 }, (_, i) => i)];
      await eventually(async () => (await notes(client, instance)).length >= expected.length, "every note after the resume");
      assert.deepEqual(await notes(client, instance), expected, "each once, in order");
      assert.deepEqual(lost, []);
      await client.stop(instance);
      await client.close();
    });

    it("past maxQueued the oldest unconfirmed sends are let go, and reported once a resume shows them lost", async () => {
      const { server, url } = victim();
      const client = new ServmanClient([url, fx.cluster.gateways[0].url], { reconnect: { initialDelayMs: 20, maxDelayMs: 200, maxQueued: 5 } });
      await client.connect();
      const { instance } = await client.launch("echo", { join: true });
      const lost = once(client, "sendsLost");
      // Frozen first, so that none of the sends can be read before it dies (the count is exact).
      server.child.kill("SIGSTOP");
      for (let i = 0; i < 8; i++) client.send(instance, "note", i);
      await new Promise((resolve) => setTimeout(resolve, 50));
      await server.stop("SIGKILL");
      assert.deepEqual(await within(lost, "sendsLost"), [3]);
      assert.deepEqual(await notes(client, instance), [3, 4, 5, 6, 7]);
      await client.stop(instance);
      await client.close();
    });
  });

describe("client sends and saved sessions", () => {
  const fx = useCluster({ gateways: 2, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });
  const urls = () => fx.cluster.gateways.map((g) => g.url);

  /** A client (as a page would be) joined to an echo instance it launched, without reconnecting. */
  async function page(): Promise<{ first: ServmanClient; instance: string }> {
    const first = new ServmanClient(urls(), { reconnect: false });
    await first.connect();
    const { instance } = await first.launch("echo", { join: true, options: { closeOnOwnerLeave: true } });
    return { first, instance };
  }

  it("the gateway's accepted keeps the kept sends few while connected", async () => {
    const client = new ServmanClient(urls());
    await client.connect();
    const { instance } = await client.launch("echo", { join: true });
    for (let i = 0; i < 300; i++) client.send(instance, "note", i);
    await eventually(async () => (await notes(client, instance)).length === 300, "300 notes");
    await eventually(() => client["outbox"].size === 0, "every send confirmed");
    await client.stop(instance);
    await client.close();
  });

  it("a second client resumes a saved session: still joined, no leave seen, numbering goes on", async () => {
    const { first, instance } = await page();
    for (let i = 0; i < 3; i++) first.send(instance, "note", i);
    await eventually(async () => (await notes(first, instance)).length === 3, "3 notes");
    const saved = first.resumeState();
    assert.equal(saved.sendSeq, first.sendSeq);
    assert.ok(saved.sendSeq >= 4);
    // The page goes away without ending its session (a reload): its socket is cut, not closed.
    const gone = new Promise((resolve) => first.on("disconnect", resolve));
    await cut(fx.cluster.gateways[0], first.session);
    await within(gone, "disconnect");

    const shouter = await fx.cluster.raw(1);
    assert.equal((await shouter.request({ type: "join", instance })).type, "joined");
    const second = new ServmanClient([...urls()].reverse(), { resume: JSON.parse(JSON.stringify(saved)) });
    const resumed = once(second, "resumed");
    const connected = await second.connect();
    assert.deepEqual(connected, { session: saved.session, gateway: fx.cluster.gateways[1].id, resumed: true });
    assert.deepEqual((await resumed)[0], [instance]);
    assert.equal(second.session, saved.session);
    assert.equal(second.resumeToken, saved.token);
    const shouts: unknown[] = [];
    second.handle("shout", (_i, data) => shouts.push((data as { data: unknown }).data));
    shouter.send({ type: "send", instance, action: "shout", data: "after" });
    await eventually(() => shouts.length === 1, "a shout after the resume");
    second.send(instance, "note", "after");
    assert.equal(second.sendSeq, saved.sendSeq + 1, "numbered past the saved page's sends");
    assert.deepEqual(await notes(second, instance), [0, 1, 2, "after"]);
    second.send(instance, "leavesSoFar");
    const leaves = await within(new Promise<unknown>((resolve) => second.instance(instance).on("leaves", resolve)), "leaves");
    assert.deepEqual((leaves as { leaves: unknown[] }).leaves, [], "the service saw no leave");
    await second.stop(instance);
    await second.close();
  });

  it("the saved page's sends the cluster lacks are reported as lost", async () => {
    const { first, instance } = await page();
    first.send(instance, "note", 0);
    await eventually(async () => (await notes(first, instance)).length === 1, "1 note");
    // As if the page had made two more sends that never left it.
    const saved = { ...first.resumeState(), sendSeq: first.sendSeq + 2 };
    await cut(fx.cluster.gateways[0], first.session);
    const second = new ServmanClient(urls(), { resume: saved });
    const lost = once(second, "sendsLost");
    assert.equal((await second.connect()).resumed, true);
    assert.deepEqual(await within(lost, "sendsLost"), [2]);
    await second.stop(instance);
    await second.close();
  });

  it("a saved session that cannot be resumed: reset, and a new session", async () => {
    const { first, instance } = await page();
    await cut(fx.cluster.gateways[0], first.session);
    const second = new ServmanClient(urls(), { resume: { ...first.resumeState(), token: "not-the-token" } });
    const reset = once(second, "reset");
    const connected = await second.connect();
    assert.equal(connected.resumed, false);
    assert.notEqual(connected.session, first.session);
    assert.equal(((await reset)[0] as { code: string }).code, "forbidden");
    await assert.rejects(second.sendChecked(instance, "note", 1), { code: "not_joined" });
    await second.close();
    const owner = new ServmanClient(urls(), { resume: first.resumeState() });
    await owner.connect();
    await owner.stop(instance);
    await owner.close();
  });
});
