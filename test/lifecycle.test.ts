/** How instances start, talk and end, as joined clients see it. */
import assert from "node:assert/strict";
import { realpathSync } from "node:fs";
import { dirname } from "node:path";
import { describe, it } from "node:test";
import { type RawClient } from "./helpers/cluster.js";
import { alive, descendants, eventually } from "./helpers/processes.js";
import { TOPOLOGIES } from "./helpers/redis-topology.js";
import { useCluster } from "./helpers/use-cluster.js";

for (const topology of TOPOLOGIES)
  describe(`instance lifecycle (${topology})`, () => {
    const fx = useCluster({ gateways: 2, topology });

    /** An owner with an instance of `task` and two other clients joined to it (one per gateway). */
    async function joinedPair(task = "echo"): Promise<{ owner: RawClient; a: RawClient; b: RawClient; instance: string }> {
      const owner = await fx.cluster.raw(0);
      const launched = await owner.request({ type: "launch", task });
      assert.equal(launched.type, "launched", JSON.stringify(launched));
      const a = await fx.cluster.raw(0);
      const b = await fx.cluster.raw(1);
      assert.equal((await a.request({ type: "join", instance: launched.instance })).type, "joined");
      assert.equal((await b.request({ type: "join", instance: launched.instance })).type, "joined");
      return { owner, a, b, instance: launched.instance };
    }

    async function whoami(client: RawClient, instance: string): Promise<Record<string, any>> {
      client.send({ type: "send", instance, action: "whoami" });
      return (await client.next((f) => f.type === "message" && f.action === "whoami")).data;
    }

    async function expectClosed(clients: RawClient[], instance: string, reason: string): Promise<void> {
      for (const c of clients) assert.equal((await c.next((f) => f.type === "closed" && f.instance === instance)).reason, reason);
      await eventually(async () => (await fx.redis.client.exists(`{t}:instance:${instance}`)) === 0, "the registry record to go");
    }

    it("reports a crash to every joined client, on both gateways", async () => {
      const { a, b, instance } = await joinedPair();
      a.send({ type: "send", instance, action: "crash" });
      await expectClosed([a, b], instance, "crashed");
      const err = await a.request({ type: "send", instance, action: "echo" });
      assert.equal(err.code, "not_joined", "a send to the crashed instance is refused");
    });

    it("reports a service that stops itself as stopped", async () => {
      const { a, b, instance } = await joinedPair();
      b.send({ type: "send", instance, action: "stop-yourself" });
      await expectClosed([a, b], instance, "stopped");
    });

    it("reports a clean exit nobody asked for as exited", async () => {
      const { a, b, instance } = await joinedPair();
      a.send({ type: "send", instance, action: "exit-clean" });
      await expectClosed([a, b], instance, "exited");
    });

    it("answers a stop once the process has exited, and closes everyone", async () => {
      const { owner, a, b, instance } = await joinedPair();
      const { pid } = await whoami(a, instance);
      assert.ok(alive(pid));
      assert.equal((await owner.request({ type: "stop", instance })).type, "stopped");
      assert.equal(alive(pid), false, "the process is gone when stopped arrives");
      assert.equal(await fx.redis.client.exists(`{t}:instance:${instance}`), 0);
      await expectClosed([a, b], instance, "stopped");
    });

    it("shows a shutting-down instance as stopping, and kills one that overruns its deadline", async () => {
      const owner = await fx.cluster.raw(0);
      const slow = await owner.request({ type: "launch", task: "echo", args: { slowShutdownMs: 400 } });
      const stopping = owner.request({ type: "stop", instance: slow.instance });
      await eventually(async () => (await fx.redis.client.hget(`{t}:instance:${slow.instance}`, "state")) === "stopping", "state stopping");
      assert.equal((await stopping).type, "stopped");
      // shutdownDeadlineMs is 2000 in the test config: a service taking 60 s is killed at the deadline.
      const stuck = await owner.request({ type: "launch", task: "echo", args: { slowShutdownMs: 60_000 } });
      const started = Date.now();
      assert.equal((await owner.request({ type: "stop", instance: stuck.instance })).type, "stopped");
      const took = Date.now() - started;
      assert.ok(took >= 1900 && took < 30_000, `stopped after ${took} ms`);
    });

    it("kicks: the kicked client is closed, the others are told, the service saw the reason", async () => {
      const { owner, a, b, instance } = await joinedPair();
      a.send({ type: "send", instance, action: "kick-me" });
      assert.equal((await a.next((f) => f.type === "closed")).reason, "kicked");
      const left = await b.next((f) => f.type === "message" && f.action === "member-left");
      assert.deepEqual(left.data, { client: a.session, reason: "kicked" });
      const err = await a.request({ type: "leave", instance });
      assert.equal(err.code, "not_joined");
      await owner.request({ type: "stop", instance });
    });

    it("tells the service whether a client left or disconnected", async () => {
      const { owner, a, b, instance } = await joinedPair();
      assert.equal((await a.request({ type: "leave", instance })).type, "left");
      assert.deepEqual((await b.next((f) => f.action === "member-left")).data, { client: a.session, reason: "left" });
      const c = await fx.cluster.raw(1);
      await c.request({ type: "join", instance });
      await c.close();
      assert.deepEqual((await b.next((f) => f.action === "member-left")).data, { client: c.session, reason: "disconnected" });
      await owner.request({ type: "stop", instance });
    });

    it("answers a second join with joined, and queues sends made before joined arrives", async () => {
      const owner = await fx.cluster.raw();
      const { instance } = await owner.request({ type: "launch", task: "echo" });
      owner.send({ type: "join", instance, id: "j1" });
      for (let seq = 0; seq < 20; seq++) owner.send({ type: "send", instance, action: "echo", data: seq });
      assert.equal((await owner.next((f) => f.id === "j1")).type, "joined");
      for (let seq = 0; seq < 20; seq++) assert.equal((await owner.next((f) => f.action === "echo")).data, seq);
      assert.equal((await owner.request({ type: "join", instance })).type, "joined");
      await owner.request({ type: "stop", instance });
    });

    it("answers queued sends with not_joined when the join fails", async () => {
      const owner = await fx.cluster.raw();
      const { instance } = await owner.request({ type: "launch", task: "echo" });
      owner.send({ type: "join", instance, id: "j", data: "reject" });
      owner.send({ type: "send", instance, action: "echo", id: "s" });
      assert.equal((await owner.next((f) => f.id === "j")).code, "join_rejected");
      assert.equal((await owner.next((f) => f.id === "s")).code, "not_joined");
      await owner.request({ type: "stop", instance });
    });

    it("gives the service its id, task, args, environment and working folder", async () => {
      // The node's own SERVMAN_* settings (its Redis URL, say) are not passed on.
      process.env.SERVMAN_TEST_SECRET = "node only";
      const owner = await fx.cluster.raw();
      const { instance } = await owner.request({ type: "launch", task: "echo", instance: "with-args", args: { map: "dust", players: 4 } });
      await owner.request({ type: "join", instance });
      const who = await whoami(owner, instance);
      assert.deepEqual(
        { instance: who.instance, task: who.task, args: who.args, envInstance: who.envInstance, envExtra: who.envExtra, client: who.client },
        { instance: "with-args", task: "echo", args: { map: "dust", players: 4 }, envInstance: "with-args", envExtra: "from-config", client: owner.session },
      );
      assert.equal(realpathSync(who.cwd), realpathSync(dirname(fx.cluster.config.file!)));
      assert.deepEqual(who.servmanEnv, ["SERVMAN_INSTANCE", "SERVMAN_TASK"]);
      delete process.env.SERVMAN_TEST_SECRET;
      await owner.request({ type: "stop", instance });
    });

    it("keeps running when a handler throws", async () => {
      const owner = await fx.cluster.raw();
      const { instance } = await owner.request({ type: "launch", task: "echo" });
      await owner.request({ type: "join", instance });
      owner.send({ type: "send", instance, action: "throws" });
      owner.send({ type: "send", instance, action: "no-such-action" });
      owner.send({ type: "send", instance, action: "echo", data: "still here" });
      assert.equal((await owner.next((f) => f.action === "echo")).data, "still here");
      await owner.request({ type: "stop", instance });
    });

    it("launches one process for concurrent launches of the same id", async () => {
      const clients = await Promise.all([0, 1, 0, 1, 0].map((g) => fx.cluster.raw(g)));
      const replies = await Promise.all(clients.map((c) => c.request({ type: "launch", task: "echo", instance: "contested" })));
      assert.deepEqual(replies.map((r) => r.type ?? r.code).sort(), ["error", "error", "error", "error", "launched"]);
      assert.deepEqual(
        replies.filter((r) => r.type === "error").map((r) => r.code),
        ["already_exists", "already_exists", "already_exists", "already_exists"],
      );
      const services = descendants().filter((p) => p.cmd.includes("echo-service"));
      assert.equal(services.length, 1);
      const owner = clients[replies.findIndex((r) => r.type === "launched")];
      await owner.request({ type: "stop", instance: "contested" });
    });

    it("stops an instance left idle (idleTimeoutMs) and one past its lifetime (maxLifetimeMs)", async () => {
      const owner = await fx.cluster.raw();
      const idle = await owner.request({ type: "launch", task: "idle-echo" });
      await eventually(async () => (await fx.redis.client.exists(`{t}:instance:${idle.instance}`)) === 0, "the idle instance to stop", 5000);
      // A joined client keeps an idle-limited instance alive; the countdown starts when it leaves.
      const kept = await owner.request({ type: "launch", task: "idle-echo" });
      await owner.request({ type: "join", instance: kept.instance });
      // The point of the test: nothing happens for more than twice idleTimeoutMs (300) while joined.
      await new Promise((r) => setTimeout(r, 700));
      assert.equal(await fx.redis.client.exists(`{t}:instance:${kept.instance}`), 1, "still running while joined");
      await owner.request({ type: "leave", instance: kept.instance });
      await eventually(async () => (await fx.redis.client.exists(`{t}:instance:${kept.instance}`)) === 0, "the instance to stop once idle", 5000);
      const short = await owner.request({ type: "launch", task: "short-echo" });
      await owner.request({ type: "join", instance: short.instance });
      assert.equal((await owner.next((f) => f.type === "closed" && f.instance === short.instance, 5000)).reason, "stopped");
    });
  });
