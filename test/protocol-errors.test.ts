/**
 * Every error code the core produces, each from a real bad request on a real connection, which
 * stays usable afterwards (docs/protocol.md#error-codes).
 */
import assert from "node:assert/strict";
import { before, describe, it } from "node:test";
import { ECHO_SERVICE, testTasks, type RawClient } from "./helpers/cluster.js";
import { useCluster } from "./helpers/use-cluster.js";

describe("client protocol errors", () => {
  const fx = useCluster({
    // "full" is offered only by a node with no capacity: its launches can never be placed.
    nodes: [
      { id: "worker", tasks: ["echo", "slow-echo"] },
      { id: "full-node", capacity: 0, tasks: ["full"] },
    ],
    extra: { tasks: { ...testTasks(), full: { module: ECHO_SERVICE } }, gateway: { host: "127.0.0.1", port: 0, limits: { maxFrameBytes: 4096, maxJoinsPerConnection: 2 } } },
  });
  let raw: RawClient;

  before(async () => {
    raw = await fx.cluster.raw();
  });

  /** Sends `frame`, expects an error with `code`, then proves the connection still answers. */
  async function expectError(frame: Record<string, unknown> | string, code: string, client: RawClient = raw): Promise<Record<string, any>> {
    let reply: Record<string, any>;
    if (typeof frame === "string") {
      client.sendText(frame);
      reply = await client.next((f) => f.type === "error");
    } else {
      reply = await client.request(frame, 20_000);
    }
    assert.equal(reply.type, "error", JSON.stringify(reply));
    assert.equal(reply.code, code, reply.message);
    assert.equal(typeof reply.message, "string");
    assert.ok(reply.message.length > 0);
    assert.equal((await client.request({ type: "ping" })).type, "pong", "connection still usable");
    return reply;
  }

  it("bad_request: not JSON, not an object, missing or mistyped fields", async () => {
    await expectError("{not json", "bad_request");
    await expectError("[1,2]", "bad_request");
    await expectError("42", "bad_request");
    await expectError({ noType: true }, "bad_request");
    const missing = await expectError({ type: "launch" }, "bad_request");
    assert.match(missing.message, /task/);
    const mistyped = await expectError({ type: "join", instance: 7 }, "bad_request");
    assert.match(mistyped.message, /instance/);
    const badId = await expectError({ type: "join", instance: "bad:id" }, "bad_request");
    assert.ok(badId.message.includes("A-Za-z0-9"), badId.message);
    await expectError({ type: "send", instance: "x", action: "" }, "bad_request");
    await expectError({ type: "launch", task: "echo", options: { allow: "everyone" } }, "bad_request");
  });

  it("bad_request: a binary frame", async () => {
    raw.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    const reply = await raw.next((f) => f.type === "error");
    assert.equal(reply.code, "bad_request");
    assert.equal((await raw.request({ type: "ping" })).type, "pong");
  });

  it("unknown_type", async () => {
    await expectError({ type: "dance" }, "unknown_type");
  });

  it("unknown_task", async () => {
    await expectError({ type: "launch", task: "no-such-task" }, "unknown_task");
  });

  it("unknown_instance: join and stop of an instance that does not exist", async () => {
    await expectError({ type: "join", instance: "ghost" }, "unknown_instance");
    await expectError({ type: "stop", instance: "ghost" }, "unknown_instance");
  });

  it("not_joined: send and leave without a join", async () => {
    const launched = await raw.request({ type: "launch", task: "echo" });
    assert.equal(launched.type, "launched");
    await expectError({ type: "send", instance: launched.instance, action: "echo" }, "not_joined");
    await expectError({ type: "leave", instance: launched.instance }, "not_joined");
    assert.equal((await raw.request({ type: "stop", instance: launched.instance })).type, "stopped");
  });

  it("unavailable: a send no node receives (its node is not subscribed) is reported, with its id", async () => {
    const launched = await raw.request({ type: "launch", task: "echo" });
    assert.equal((await raw.request({ type: "join", instance: launched.instance })).type, "joined");
    // As while a node resubscribes after Redis restarted: nobody listens on the instance channel.
    const node = fx.cluster.nodes[0];
    const channel = node.keys.instanceChannel(launched.instance);
    await node["sub"].unsubscribe(channel);
    const reply = await expectError({ type: "send", instance: launched.instance, action: "echo", data: 1 }, "unavailable");
    assert.match(reply.message, /no node is listening/);
    await node["sub"].subscribe(channel);
    raw.send({ type: "send", instance: launched.instance, action: "echo", data: 2 });
    assert.equal((await raw.next((f) => f.action === "echo")).data, 2, "delivered again once subscribed");
    assert.equal((await raw.request({ type: "stop", instance: launched.instance })).type, "stopped");
  });

  it("already_exists: a second launch with the same id", async () => {
    const first = await raw.request({ type: "launch", task: "echo", instance: "only-once" });
    assert.deepEqual([first.type, first.instance], ["launched", "only-once"]);
    await expectError({ type: "launch", task: "echo", instance: "only-once" }, "already_exists");
    assert.equal((await raw.request({ type: "stop", instance: "only-once" })).type, "stopped");
  });

  it("join_rejected: the service refuses", async () => {
    const { instance } = await raw.request({ type: "launch", task: "echo" });
    const reply = await expectError({ type: "join", instance, data: "reject" }, "join_rejected");
    assert.match(reply.message, /asked to be rejected/);
    await raw.request({ type: "stop", instance });
  });

  it("forbidden: stop by someone else, a deny list, too many joins", async () => {
    const owner = await fx.cluster.raw();
    const { instance } = await owner.request({ type: "launch", task: "echo" });
    await expectError({ type: "stop", instance }, "forbidden");
    const denied = await owner.request({ type: "launch", task: "echo", options: { deny: [raw.session] } });
    await expectError({ type: "join", instance: denied.instance }, "forbidden");
    const other = await fx.cluster.raw();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await owner.request({ type: "launch", task: "echo" })).instance);
    assert.equal((await other.request({ type: "join", instance: ids[0] })).type, "joined");
    assert.equal((await other.request({ type: "join", instance: ids[1] })).type, "joined");
    await expectError({ type: "join", instance: ids[2] }, "forbidden", other);
    for (const id of [instance, denied.instance, ...ids]) assert.equal((await owner.request({ type: "stop", instance: id })).type, "stopped");
  });

  it("no_capacity: no node has room before the launch timeout", async () => {
    const reply = await expectError({ type: "launch", task: "full", options: { timeoutMs: 300 } }, "no_capacity");
    assert.match(reply.message, /capacity/);
    assert.deepEqual(await fx.redis.client.smembers("{t}:instances"), [], "the reservation is gone");
  });

  it("launch_failed: the process exits before it is ready, with its last log line", async () => {
    const reply = await expectError({ type: "launch", task: "echo", args: { failStart: true } }, "launch_failed");
    assert.match(reply.message, /code 1/);
    assert.match(reply.message, /failStart was asked for/);
  });

  it("timeout: the process never says ready", async () => {
    const reply = await expectError({ type: "launch", task: "slow-echo", args: { neverReady: true } }, "timeout");
    assert.match(reply.message, /800 ms/);
  });

  it("resume: timeout for a session that no longer exists, bad_request when not first or not an id", async () => {
    const reply = await expectError({ type: "resume", session: "A".repeat(21), resume: "token" }, "timeout", await fx.cluster.raw());
    assert.match(reply.message, /resume window/);
    assert.match((await expectError({ type: "resume", session: "gone", resume: "token" }, "bad_request", await fx.cluster.raw())).message, /not a session id/);
    assert.match((await expectError({ type: "resume", session: "A".repeat(21), resume: "token" }, "bad_request")).message, /first frame/);
  });

  it("closes with 1009 on a frame over the size limit", async () => {
    const victim = await fx.cluster.raw();
    victim.sendText(JSON.stringify({ type: "send", instance: "x", action: "a", data: "y".repeat(5000) }));
    await new Promise((r) => victim.ws.once("close", r));
    assert.equal(victim.closeCode, 1009);
    assert.equal((await raw.request({ type: "ping" })).type, "pong", "other connections are unaffected");
  });

  it("echoes string and number request ids", async () => {
    raw.send({ type: "ping", id: 12 });
    assert.deepEqual(await raw.next((f) => f.id === 12), { type: "pong", id: 12 });
    raw.send({ type: "dance", id: "x-1" });
    const err = await raw.next((f) => f.id === "x-1");
    assert.equal(err.code, "unknown_type");
  });
});
