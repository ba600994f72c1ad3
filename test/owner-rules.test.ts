/** The owner rules of the original: who may stop, who may join, and closeOnOwnerLeave. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

describe("owner rules", () => {
  const fx = useCluster({ gateways: 2 });

  const exists = async (instance: string) => (await fx.redis.client.exists(`{t}:instance:${instance}`)) === 1;

  it("refuses a stop from anyone but the owner, and alerts the owner", async () => {
    const owner = await fx.cluster.raw(0);
    const intruder = await fx.cluster.raw(1);
    const { instance } = await owner.request({ type: "launch", task: "echo" });
    await intruder.request({ type: "join", instance });
    const refused = await intruder.request({ type: "stop", instance });
    assert.equal(refused.code, "forbidden");
    const alert = await owner.next((f) => f.type === "alert");
    assert.deepEqual(alert, { type: "alert", instance, kind: "stop_refused", session: intruder.session, user: null });
    assert.ok(await exists(instance), "still running");
    assert.equal((await owner.request({ type: "stop", instance })).type, "stopped");
  });

  it("lets the owner stop without having joined", async () => {
    const owner = await fx.cluster.raw(1);
    const { instance } = await owner.request({ type: "launch", task: "echo" });
    assert.equal((await owner.request({ type: "stop", instance })).type, "stopped");
    assert.equal(await exists(instance), false);
  });

  it("closeOnOwnerLeave: stops the instance when its owner leaves", async () => {
    const owner = await fx.cluster.raw(0);
    const player = await fx.cluster.raw(1);
    const { instance } = await owner.request({ type: "launch", task: "echo", options: { closeOnOwnerLeave: true } });
    await owner.request({ type: "join", instance });
    await player.request({ type: "join", instance });
    assert.equal((await owner.request({ type: "leave", instance })).type, "left");
    assert.equal((await player.next((f) => f.type === "closed")).reason, "stopped");
    await eventually(async () => !(await exists(instance)), "the instance to be gone");
  });

  it("closeOnOwnerLeave: stops the instance when its owner disconnects", async () => {
    const owner = await fx.cluster.raw(0);
    const player = await fx.cluster.raw(1);
    const { instance } = await owner.request({ type: "launch", task: "echo", options: { closeOnOwnerLeave: true } });
    await player.request({ type: "join", instance });
    await owner.close();
    assert.equal((await player.next((f) => f.type === "closed")).reason, "stopped");
    await eventually(async () => !(await exists(instance)), "the instance to be gone");
  });

  it("without closeOnOwnerLeave the instance outlives its owner's connection", async () => {
    const owner = await fx.cluster.raw(0);
    const player = await fx.cluster.raw(1);
    const { instance } = await owner.request({ type: "launch", task: "echo" });
    await player.request({ type: "join", instance });
    await owner.close();
    player.send({ type: "send", instance, action: "echo", data: "alive" });
    assert.equal((await player.next((f) => f.action === "echo")).data, "alive");
    assert.ok(await exists(instance));
    const admin = fx.cluster.gateways[0]["requester"];
    await admin.stop(instance, null);
  });

  it("allow list: only the listed sessions (and the owner) may join", async () => {
    const owner = await fx.cluster.raw(0);
    const friend = await fx.cluster.raw(1);
    const stranger = await fx.cluster.raw(1);
    const { instance } = await owner.request({ type: "launch", task: "echo", options: { allow: [friend.session] } });
    assert.equal((await friend.request({ type: "join", instance })).type, "joined");
    assert.equal((await stranger.request({ type: "join", instance })).code, "forbidden");
    assert.equal((await owner.request({ type: "join", instance })).type, "joined");
    await owner.request({ type: "stop", instance });
  });

  it("deny list: the listed sessions may not join, everyone else may", async () => {
    const owner = await fx.cluster.raw(0);
    const banned = await fx.cluster.raw(1);
    const other = await fx.cluster.raw(0);
    const { instance } = await owner.request({ type: "launch", task: "echo", options: { deny: [banned.session] } });
    assert.equal((await banned.request({ type: "join", instance })).code, "forbidden");
    assert.equal((await other.request({ type: "join", instance })).type, "joined");
    await owner.request({ type: "stop", instance });
  });
});
