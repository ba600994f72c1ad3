/** Supervisor mode: restart policies, backoff, the crash-loop limit, and clients kept across restarts. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";
import { RestartPolicy } from "../nodes/restart-policy.js";

async function whoami(client: RawClient, instance: string): Promise<Record<string, any>> {
  client.send({ type: "send", instance, action: "whoami" });
  return (await client.next((f) => f.action === "whoami" && f.instance === instance)).data;
}

describe("restart policies", () => {
  const fx = useCluster({ gateways: 2 });

  it("on-failure: a crash restarts the process; joined clients stay joined and are told", async () => {
    const a = await fx.cluster.raw(0);
    const b = await fx.cluster.raw(1);
    const { instance } = await a.request({ type: "launch", task: "crashy-echo", args: { keep: "me" } });
    await a.request({ type: "join", instance });
    await b.request({ type: "join", instance });
    const before = await whoami(a, instance);
    a.send({ type: "send", instance, action: "crash" });
    for (const c of [a, b]) {
      const restarting = await c.next((f) => f.type === "restarting");
      assert.deepEqual({ ...restarting, delayMs: undefined }, { type: "restarting", instance, reason: "crashed", attempt: 1, delayMs: undefined });
    }
    // Sent while the process is down (b heard it is restarting): held, then delivered to the new one, in order.
    for (let n = 0; n < 10; n++) b.send({ type: "send", instance, action: "echo", data: n });
    for (const c of [a, b]) assert.equal((await c.next((f) => f.type === "restarted")).attempt, 1);
    for (let n = 0; n < 10; n++) assert.equal((await b.next((f) => f.action === "echo")).data, n);
    const after = await whoami(a, instance);
    assert.notEqual(after.pid, before.pid, "a new process");
    assert.deepEqual(after.args, { keep: "me" });
    assert.deepEqual(after.clients.sort(), [a.session, b.session].sort(), "the new process saw both joins again");
    assert.equal(await fx.redis.client.hget(`{t}:instance:${instance}`, "state"), "ready");
    assert.equal(a.frames.filter((f) => f.type === "closed").length, 0, "nobody was closed");
    await a.request({ type: "stop", instance });
  });

  it("on-failure: a crash loop past maxRestarts ends the instance as crashed", async () => {
    const a = await fx.cluster.raw(0);
    const { instance } = await a.request({ type: "launch", task: "crashy-echo" });
    await a.request({ type: "join", instance });
    for (let attempt = 1; attempt <= 2; attempt++) {
      a.send({ type: "send", instance, action: "crash" });
      assert.equal((await a.next((f) => f.type === "restarted")).attempt, attempt);
    }
    a.send({ type: "send", instance, action: "crash" });
    assert.equal((await a.next((f) => f.type === "closed")).reason, "crashed");
    await eventually(async () => (await fx.redis.client.exists(`{t}:instance:${instance}`)) === 0, "the record to go");
  });

  it("on-failure does not restart a clean exit; always does; a stop is never restarted", async () => {
    const a = await fx.cluster.raw(0);
    const crashy = await a.request({ type: "launch", task: "crashy-echo" });
    await a.request({ type: "join", instance: crashy.instance });
    a.send({ type: "send", instance: crashy.instance, action: "exit-clean" });
    assert.equal((await a.next((f) => f.type === "closed")).reason, "exited");

    const always = await a.request({ type: "launch", task: "always-echo" });
    await a.request({ type: "join", instance: always.instance });
    a.send({ type: "send", instance: always.instance, action: "exit-clean" });
    assert.equal((await a.next((f) => f.type === "restarting")).reason, "exited");
    await a.next((f) => f.type === "restarted");
    a.send({ type: "send", instance: always.instance, action: "stop-yourself" });
    assert.equal((await a.next((f) => f.type === "closed")).reason, "stopped");
    assert.equal(a.frames.filter((f) => f.type === "restarting").length, 0);
  });

  it("liveness: a hung process (no heartbeat) is killed and handled by the restart policy", async () => {
    const a = await fx.cluster.raw(0);
    const { instance } = await a.request({ type: "launch", task: "hung-echo" });
    await a.request({ type: "join", instance });
    const before = await whoami(a, instance);
    // Quiet but alive for longer than the timeout: the SDK's heartbeat keeps it from being taken for
    // hung. The point of the test is that nothing happens during these 6 s (livenessTimeoutMs 5000).
    await new Promise((r) => setTimeout(r, 6000));
    assert.equal(a.frames.filter((f) => f.type === "restarting").length, 0);
    a.send({ type: "send", instance, action: "hang" });
    assert.equal((await a.next((f) => f.type === "restarting", 20_000)).reason, "crashed");
    await a.next((f) => f.type === "restarted");
    assert.notEqual((await whoami(a, instance)).pid, before.pid);
    await a.request({ type: "stop", instance });
  });

  it("never: the default", async () => {
    const a = await fx.cluster.raw(0);
    const { instance } = await a.request({ type: "launch", task: "echo" });
    await a.request({ type: "join", instance });
    a.send({ type: "send", instance, action: "crash" });
    assert.equal((await a.next((f) => f.type === "closed")).reason, "crashed");
  });
});

describe("RestartPolicy", () => {
  it("backs off exponentially and counts restarts within a minute", () => {
    const policy = new RestartPolicy({ restart: "on-failure", maxRestarts: 4 });
    const t0 = 1_000_000;
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => policy.next("crashed", t0 + i)),
      [100, 200, 400, 800],
    );
    assert.equal(policy.next("crashed", t0 + 10), null, "a fifth within the window is a crash loop");
    assert.equal(policy.next("crashed", t0 + 61_000), 100, "the window moved on");
    assert.equal(new RestartPolicy({ restart: "on-failure", maxRestarts: 4 }).next("exited"), null);
    assert.equal(new RestartPolicy({ restart: "always", maxRestarts: 4 }).next("exited"), 100);
    assert.equal(new RestartPolicy({ restart: "never", maxRestarts: 4 }).next("crashed"), null);
  });
});
