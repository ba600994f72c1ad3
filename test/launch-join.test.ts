/**
 * Launch and join in one request (docs/protocol.md#launch-and-join): the node hands the join to
 * the ready service and `launched` says how it went; the gateway then holds the membership as
 * after a `join` (sends, leave, resume, owner rules).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServmanClient } from "../src/client/servman-client.js";
import { Keys } from "../src/keys.js";
import { type RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { cut } from "./helpers/sessions.js";
import { TOPOLOGIES } from "./helpers/redis-topology.js";
import { useCluster } from "./helpers/use-cluster.js";

const keys = new Keys("t");

for (const topology of TOPOLOGIES)
  describe(`launch and join (${topology})`, () => {
    const fx = useCluster({ topology, gateways: 2, extra: { gateway: { host: "127.0.0.1", port: 0, resumeWindowMs: 30_000 } } });

    /** The joins the instance's service was asked so far (the caller must be joined). */
    async function joinsSeen(client: RawClient, instance: string): Promise<{ client: string; data: unknown }[]> {
      client.send({ type: "send", instance, action: "joinsSoFar" });
      return (await client.next((f) => f.type === "message" && f.action === "joins" && f.instance === instance)).data;
    }

    it("joins the sender as part of the launch: sends work at once, the service saw one join, resume state is stored", async () => {
      const a = await fx.cluster.raw(0);
      const launched = await a.request({ type: "launch", task: "echo", join: true }, 30_000);
      assert.equal(launched.type, "launched", JSON.stringify(launched));
      assert.equal(launched.joined, true);
      assert.equal(launched.reason, undefined);
      const { instance } = launched;
      a.send({ type: "send", instance, action: "echo", data: "no join needed" });
      assert.equal((await a.next((f) => f.type === "message" && f.action === "echo")).data, "no join needed");
      assert.deepEqual(await joinsSeen(a, instance), [{ client: a.welcome.session, user: null, data: null }]);
      assert.equal(await fx.redis.client.hget(keys.session(a.welcome.session), `j:${instance}`), "1", "the session store knows the join (resume)");
      // A second join is answered at once, and the service is not asked again.
      assert.equal((await a.request({ type: "join", instance })).type, "joined");
      assert.equal((await joinsSeen(a, instance)).length, 1);
      // Leaving works as after a join; the owner may still stop it.
      assert.equal((await a.request({ type: "leave", instance })).type, "left");
      assert.equal((await a.request({ type: "send", instance, action: "echo" })).code, "not_joined");
      assert.equal(await fx.redis.client.hget(keys.session(a.welcome.session), `j:${instance}`), null);
      assert.equal((await a.request({ type: "stop", instance })).type, "stopped");
    });

    it("passes the join's data to the service; sends made before launched wait behind the join", async () => {
      const a = await fx.cluster.raw(1);
      const instance = `lj-data-${topology}`;
      const launching = a.request({ type: "launch", task: "echo", instance, join: { data: { hello: "world" } } }, 30_000);
      // Sent before `launched`: queued behind the launch's join, delivered once joined.
      a.send({ type: "send", instance, action: "echo", data: "early", id: "early" });
      const launched = await launching;
      assert.equal(launched.joined, true, JSON.stringify(launched));
      assert.equal((await a.next((f) => f.type === "message" && f.action === "echo")).data, "early");
      const seen = await joinsSeen(a, instance);
      assert.deepEqual(
        seen.map((j) => j.data),
        [{ hello: "world" }],
      );
      assert.equal((await a.request({ type: "stop", instance })).type, "stopped");
    });

    it("a refused join answers joined:false with the reason; the instance runs, owned by the sender", async () => {
      const a = await fx.cluster.raw(0);
      const launched = await a.request({ type: "launch", task: "echo", join: { data: "reject" } }, 30_000);
      assert.equal(launched.type, "launched", JSON.stringify(launched));
      assert.equal(launched.joined, false);
      assert.equal(launched.reason, "you asked to be rejected");
      const { instance } = launched;
      assert.equal(await fx.redis.client.hget(`{t}:instance:${instance}`, "state"), "ready");
      assert.equal(await fx.redis.client.hget(`{t}:instance:${instance}`, "owner"), a.welcome.session);
      assert.equal(await fx.redis.client.hget(keys.session(a.welcome.session), `j:${instance}`), null, "no join stored");
      assert.equal((await a.request({ type: "send", instance, action: "echo" })).code, "not_joined");
      // Others may still join it; a stop by anyone but the owner is refused.
      const b = await fx.cluster.raw(1);
      assert.equal((await b.request({ type: "join", instance })).type, "joined");
      assert.equal((await b.request({ type: "stop", instance })).code, "forbidden");
      assert.equal((await a.request({ type: "stop", instance })).type, "stopped");
    });

    it("a connection that closes before launched is not left joined: the service hears its leave", async () => {
      const a = await fx.cluster.raw(0);
      const session = a.welcome.session as string;
      const instance = `lj-gone-${topology}`;
      a.send({ type: "launch", task: "echo", instance, join: true });
      // Closed once the launch is surely under way (its reservation exists), before it is ready.
      await eventually(async () => (await fx.redis.client.exists(`{t}:instance:${instance}`)) === 1, "the launch to start");
      a.ws.close();
      await eventually(async () => (await fx.redis.client.hget(`{t}:instance:${instance}`, "state")) === "ready", "the instance to be ready");
      const b = await fx.cluster.raw(1);
      assert.equal((await b.request({ type: "join", instance })).type, "joined");
      await eventually(async () => {
        b.send({ type: "send", instance, action: "leavesSoFar" });
        const { leaves } = (await b.next((f) => f.type === "message" && f.action === "leaves")).data as { leaves: { client: string }[] };
        return leaves.some((l) => l.client === session);
      }, "the service to hear the closed connection leave");
      assert.equal(await fx.redis.client.hget(keys.session(session), `j:${instance}`), null, "no join kept for a resume");
    });

    it("refuses a malformed join with bad_request, launching nothing", async () => {
      const a = await fx.cluster.raw(0);
      for (const join of [false, 1, "yes", null, []]) {
        const reply = await a.request({ type: "launch", task: "echo", instance: "lj-bad", join });
        assert.equal(reply.code, "bad_request", `join ${JSON.stringify(join)}: ${JSON.stringify(reply)}`);
      }
      assert.equal(await fx.redis.client.exists("{t}:instance:lj-bad"), 0);
    });

    it("SDK: launch({ join }) resolves joined, handlers get the instance's messages, and a resume keeps the join", async () => {
      const client = new ServmanClient([fx.cluster.gateways[0].url, fx.cluster.gateways[1].url], { reconnect: { initialDelayMs: 20, maxDelayMs: 200 } });
      await client.connect();
      const echoes: unknown[] = [];
      client.handle("echo", (_i, data) => echoes.push(data));
      const result = await client.launch("echo", { join: true });
      assert.equal(result.joined, true);
      client.send(result.instance, "echo", 1);
      await eventually(() => echoes.length === 1, "the first echo");
      const resumed = new Promise<string[]>((resolve) => client.on("resumed", (instances) => resolve(instances)));
      await cut(fx.cluster.gateways[0], client.session);
      client.send(result.instance, "echo", 2);
      assert.deepEqual(await resumed, [result.instance]);
      await eventually(() => echoes.length === 2, "the echo queued while away");
      assert.deepEqual(echoes, [1, 2]);
      const refused = await client.launch("echo", { join: { data: "reject" } });
      assert.deepEqual([refused.joined, refused.reason], [false, "you asked to be rejected"]);
      await client.stop(refused.instance);
      await client.stop(result.instance);
      await client.close();
    });
  });
