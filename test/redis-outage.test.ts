/**
 * Redis stops answering (its process is frozen with SIGSTOP) and comes back (SIGCONT): requests
 * fail with `unavailable` instead of hanging, /healthz says 503 meanwhile, and service resumes,
 * joined clients included, with no restart of Servman.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

describe("Redis outage", () => {
  const fx = useCluster();

  it("answers unavailable and 503 while Redis is frozen, then carries on", async () => {
    const health = () => fetch(fx.cluster.gateways[0].url.replace("ws://", "http://").replace("/v1/connect", "/healthz")).then((r) => r.status);
    const client = await fx.cluster.raw();
    const { instance } = await client.request({ type: "launch", task: "echo" });
    await client.request({ type: "join", instance });
    assert.equal(await health(), 200);

    process.kill(fx.redis.pid, "SIGSTOP");
    try {
      await eventually(async () => (await health()) === 503, "/healthz to report 503", 10_000);
      const refused = await client.request({ type: "launch", task: "echo" }, 20_000);
      assert.equal(refused.type, "error");
      assert.equal(refused.code, "unavailable", refused.message);
      assert.equal((await client.request({ type: "ping" })).type, "pong", "the gateway itself still answers");
    } finally {
      process.kill(fx.redis.pid, "SIGCONT");
    }

    await eventually(async () => (await health()) === 200, "/healthz to recover", 15_000);
    client.send({ type: "send", instance, action: "echo", data: "after the outage" });
    assert.equal((await client.next((f) => f.action === "echo" && f.data === "after the outage", 15_000)).instance, instance);
    const again = await client.request({ type: "launch", task: "echo" }, 20_000);
    assert.equal(again.type, "launched");
    for (const id of [instance, again.instance]) assert.equal((await client.request({ type: "stop", instance: id })).type, "stopped");
  });
});
