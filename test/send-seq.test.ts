/**
 * Numbered sends (docs/protocol.md#numbered-sends), over raw WebSockets: a repeated number is
 * relayed once, refused sends do not hold the count back, `accepted` tells the client how far
 * the gateway got, and `resumed.acked` tells it what the cluster has, on the same gateway or
 * another, and after a gateway was killed (then from the instances' nodes). Real gateways (one a
 * separate process, SIGKILLed), node and services.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { startGatewayProcess, type ServerProcess } from "./helpers/cli.js";
import { RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { cut } from "./helpers/sessions.js";
import { TOPOLOGIES } from "./helpers/redis-topology.js";
import { useCluster, type ClusterFixture } from "./helpers/use-cluster.js";

/** What the instance's service received through `note`, in order. */
async function notes(client: RawClient, instance: string): Promise<unknown[]> {
  client.send({ type: "send", instance, action: "notesSoFar" });
  return (await client.next((f) => f.action === "notes")).data as unknown[];
}

/** A raw client on gateway `gw` joined to a fresh echo instance it launched. */
async function launched(fx: ClusterFixture<unknown>, gw = 0): Promise<{ client: RawClient; instance: string }> {
  const client = await fx.cluster.raw(gw);
  const reply = await client.request({ type: "launch", task: "echo", join: true }, 30_000);
  assert.equal(reply.joined, true, JSON.stringify(reply));
  return { client, instance: reply.instance as string };
}

describe("numbered sends", () => {
  const fx = useCluster({ gateways: 2, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });

  it("the welcome says the gateway takes numbered sends", async () => {
    const client = await fx.cluster.raw(0);
    assert.deepEqual(client.welcome.features, ["send-seq"]);
  });

  it("a number sent twice is delivered once; a repeat asking for ack is answered sent", async () => {
    const { client, instance } = await launched(fx);
    client.send({ type: "send", instance, action: "note", data: "a", seq: 1 });
    client.send({ type: "send", instance, action: "note", data: "a again", seq: 1 });
    client.send({ type: "send", instance, action: "note", data: "b", seq: 2 });
    const repeat = await client.request({ type: "send", instance, action: "note", data: "b again", seq: 2, ack: true });
    assert.deepEqual(repeat, { type: "sent", id: repeat.id, instance });
    // An older number after a newer one was taken: a repeat too.
    client.send({ type: "send", instance, action: "note", data: "a late", seq: 1 });
    const fresh = await client.request({ type: "send", instance, action: "note", data: "c", seq: 3, ack: true });
    assert.equal(fresh.type, "sent");
    assert.deepEqual(await notes(client, instance), ["a", "b", "c"]);
    assert.ok(await client.next((f) => f.type === "accepted" && f.seq === 3));
    await client.request({ type: "stop", instance });
  });

  it("sends without a number work as before, beside numbered ones", async () => {
    const { client, instance } = await launched(fx);
    client.send({ type: "send", instance, action: "note", data: 1 });
    client.send({ type: "send", instance, action: "note", data: 1 });
    client.send({ type: "send", instance, action: "note", data: 2, seq: 1 });
    assert.deepEqual(await notes(client, instance), [1, 1, 2]);
    await client.request({ type: "stop", instance });
  });

  it("a refused send does not hold the count back; one counter across instances", async () => {
    const { client, instance } = await launched(fx);
    const other = await client.request({ type: "launch", task: "echo", join: true }, 30_000);
    const refused = await client.request({ type: "send", instance: "not-joined-here", action: "note", data: 0, seq: 1 });
    assert.equal(refused.code, "not_joined");
    client.send({ type: "send", instance, action: "note", data: 2, seq: 2 });
    client.send({ type: "send", instance: other.instance, action: "note", data: 3, seq: 3 });
    client.send({ type: "send", instance, action: "note", data: 4, seq: 4 });
    assert.ok(await client.next((f) => f.type === "accepted" && f.seq === 4));
    assert.deepEqual(await notes(client, instance), [2, 4]);
    assert.deepEqual(await notes(client, other.instance as string), [3]);
    // A number below the highest taken is a repeat, whichever instance it names.
    client.send({ type: "send", instance: other.instance, action: "note", data: "late", seq: 2 });
    assert.deepEqual(await notes(client, other.instance as string), [3]);
    await client.request({ type: "stop", instance });
    await client.request({ type: "stop", instance: other.instance });
  });

  it("sends held behind a join are numbered too, and a failed join's are accepted as refused", async () => {
    const client = await fx.cluster.raw(0);
    const { instance } = await client.request({ type: "launch", task: "echo" }, 30_000);
    client.send({ type: "join", instance, data: "reject" });
    client.send({ type: "send", instance, action: "note", data: 1, seq: 1 });
    assert.equal((await client.next((f) => f.type === "error" && f.code === "not_joined")).code, "not_joined");
    client.send({ type: "join", instance });
    client.send({ type: "send", instance, action: "note", data: 2, seq: 2 });
    assert.ok(await client.next((f) => f.type === "accepted" && f.seq === 2));
    assert.deepEqual(await notes(client, instance as string), [2]);
    await client.request({ type: "stop", instance });
  });

  for (const where of ["the same gateway", "another gateway"])
    it(`resumed on ${where} says what the cluster accepted, and repeats are not delivered again`, async () => {
      const { client, instance } = await launched(fx, 0);
      const { welcome } = client;
      for (let seq = 1; seq <= 10; seq++) client.send({ type: "send", instance, action: "note", data: seq, seq });
      await eventually(async () => (await notes(client, instance)).length === 10, "10 notes");
      await cut(fx.cluster.gateways[0], welcome.session);
      const b = await fx.cluster.raw(where === "the same gateway" ? 0 : 1);
      const resumed = await b.request({ type: "resume", session: welcome.session, resume: welcome.resume });
      assert.equal(resumed.type, "resumed", JSON.stringify(resumed));
      assert.equal(resumed.acked, 10);
      // The client sends again what it is not sure of: the repeats are dropped, the rest relayed.
      for (let seq = 8; seq <= 12; seq++) b.send({ type: "send", instance, action: "note", data: seq, seq });
      assert.deepEqual(await notes(b, instance), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
      await b.request({ type: "stop", instance });
    });

  it("a session that never numbered its sends resumes with acked 0", async () => {
    const { client, instance } = await launched(fx, 0);
    client.send({ type: "send", instance, action: "note", data: 1 });
    await eventually(async () => (await notes(client, instance)).length === 1, "1 note");
    await cut(fx.cluster.gateways[0], client.welcome.session);
    const b = await fx.cluster.raw(1);
    const resumed = await b.request({ type: "resume", session: client.welcome.session, resume: client.welcome.resume });
    assert.equal(resumed.acked, 0);
    await b.request({ type: "stop", instance });
  });
});

for (const topology of TOPOLOGIES)
  describe(`numbered sends after a gateway is killed (${topology})`, () => {
    const servers: ServerProcess[] = [];
    after(async () => {
      await Promise.all(servers.map((s) => s.stop("SIGKILL")));
    });
    const fx = useCluster({ topology, gateways: 1, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });
    let victim: { server: ServerProcess; url: string } | undefined;
    before(async () => {
      victim = await startGatewayProcess(fx.redis.url, 30_000, servers);
    });

    it("resumed.acked right after a SIGKILL comes from the instances' nodes", async () => {
      const client = await RawClient.connect(victim!.url);
      const { welcome } = client;
      const a = await client.request({ type: "launch", task: "echo", join: true }, 30_000);
      const b = await client.request({ type: "launch", task: "echo", join: true }, 30_000);
      // Numbers 1-6 to one instance, 7-9 to the other: the highest any node has is what counts.
      for (let seq = 1; seq <= 9; seq++) client.send({ type: "send", instance: seq <= 6 ? a.instance : b.instance, action: "note", data: seq, seq });
      await eventually(async () => (await notes(client, b.instance as string)).length === 3, "the other instance's 3 notes");
      assert.equal(await victim!.server.stop("SIGKILL"), null);
      const resumer = await fx.cluster.raw(0);
      const resumed = await resumer.request({ type: "resume", session: welcome.session, resume: welcome.resume });
      assert.equal(resumed.type, "resumed", JSON.stringify(resumed));
      assert.equal(resumed.acked, 9);
      resumer.send({ type: "send", instance: a.instance, action: "note", data: 6, seq: 6 });
      resumer.send({ type: "send", instance: a.instance, action: "note", data: 10, seq: 10 });
      assert.deepEqual(await notes(resumer, a.instance as string), [1, 2, 3, 4, 5, 6, 10]);
      assert.deepEqual(await notes(resumer, b.instance as string), [7, 8, 9]);
      await resumer.request({ type: "stop", instance: a.instance });
      await resumer.request({ type: "stop", instance: b.instance });
      await client.close();
    });
  });
