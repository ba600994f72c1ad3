/**
 * Hostile input that used to end a process (docs/security.md#hostile-input): deeply nested
 * frames, task output and Redis messages, valid JSON of the wrong shape on every internal
 * channel, and a ticket `sub` that is not well-formed text. After each, the gateway and the node
 * are still running and serving a well-behaved client.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { WebSocket } from "ws";
import { mintTicket } from "../src/auth/tickets.js";
import { Keys } from "../src/keys.js";
import { jsonTextTooDeep, valueTooDeep } from "../src/protocol/json-depth.js";
import { redactUrl } from "../src/config/redis-target.js";
import { escapeControl } from "../cli/commands/logs.js";
import { testTasks, type RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

const DEEP_TASK = fileURLToPath(new URL("./fixtures/deep-output-task.js", import.meta.url));
const SECRET = "hostile-input-test-secret-0123456789";
const keys = new Keys("t");

const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

describe("hostile input", () => {
  const fx = useCluster({
    extra: {
      gateway: { host: "127.0.0.1", port: 0, limits: { maxFrameBytes: 256 * 1024 } },
      tasks: { ...testTasks(), "deep-output": { command: [process.execPath, DEEP_TASK] } },
    },
  });
  let good: RawClient;

  before(async () => {
    good = await fx.cluster.raw();
    await good.request({ type: "launch", task: "echo", instance: "steady" });
    await good.request({ type: "join", instance: "steady" });
  });

  /** The gateway, the node and the instance still serve a well-behaved client. */
  async function stillServing(): Promise<void> {
    const n = Math.random();
    good.send({ type: "send", instance: "steady", action: "echo", data: { n } });
    const echo = await good.next((f) => f.type === "message" && f.action === "echo" && f.data?.n === n);
    assert.equal(echo.instance, "steady");
  }

  it("a send frame nested 5,000 levels is refused with bad_request, on an instance the sender never joined", async () => {
    const hostile = await fx.cluster.raw();
    hostile.sendText(`{"type":"send","id":"n","instance":"I","action":"a","data":${nested(5000)}}`);
    const reply = await hostile.next((f) => f.id === "n");
    assert.equal(reply.type, "error");
    assert.equal(reply.code, "bad_request");
    assert.match(reply.message, /nested deeper than 32 levels/);
    assert.equal((await hostile.request({ type: "ping" })).type, "pong", "the connection goes on");
    await stillServing();
  });

  it("maxDepth counts the frame as level 1: data 31 deep is relayed, 32 deep is not", async () => {
    good.send({ type: "send", id: "ok", instance: "steady", action: "echo", data: JSON.parse(nested(31)) });
    const echo = await good.next((f) => f.type === "message" && f.action === "echo" && Array.isArray(f.data));
    assert.equal(valueTooDeep(echo.data, 30), true, "all 31 levels arrived");
    const refused = await good.request({ type: "send", instance: "steady", action: "echo", data: JSON.parse(nested(32)) });
    assert.equal(refused.code, "bad_request");
  });

  it("a join whose data nests 4,111 levels is refused at the gateway; the node never sees it", async () => {
    const hostile = await fx.cluster.raw();
    hostile.sendText(`{"type":"join","id":"j","instance":"steady","data":${nested(4111)}}`);
    const reply = await hostile.next((f) => f.id === "j");
    assert.equal(reply.code, "bad_request");
    await stillServing();
  });

  it("the node survives a join with deep data published straight on the instance channel", async () => {
    const node = fx.cluster.nodes[0];
    const before = node.counts.badBusMessages + node.counts.internalErrors;
    const join = `{"type":"join","client":"intruder","user":null,"reply":"${keys.sessionChannel("intruder")}","data":${nested(4111)}}`;
    assert.equal(await fx.redis.client.publish(keys.instanceChannel("steady"), join), 1);
    await eventually(() => node.counts.badBusMessages + node.counts.internalErrors > before, "the bad join is counted");
    await stillServing();
  });

  it("a command task writing a line nested 10,000 levels costs it one invalid line, not its node", async () => {
    const node = fx.cluster.nodes[0];
    const client = await fx.cluster.raw();
    await client.request({ type: "launch", task: "deep-output", instance: "deep-cmd" });
    await client.request({ type: "join", instance: "deep-cmd" });
    const before = node.counts.invalidOutput;
    client.send({ type: "send", instance: "deep-cmd", action: "deep", data: { depth: 10_000 } });
    await eventually(() => node.counts.invalidOutput > before, "the deep line is counted as invalid output");
    client.send({ type: "send", instance: "deep-cmd", action: "echo", data: "after" });
    assert.equal((await client.next((f) => f.type === "message" && f.action === "echo")).data, "after");
    await stillServing();
  });

  it("a module task sending data nested 3,000 levels over IPC costs it one invalid message, not its node", async () => {
    const node = fx.cluster.nodes[0];
    const client = await fx.cluster.raw();
    await client.request({ type: "launch", task: "echo", instance: "deep-ipc" });
    await client.request({ type: "join", instance: "deep-ipc" });
    const before = node.counts.invalidOutput;
    client.send({ type: "send", instance: "deep-ipc", action: "deep", data: { depth: 3_000 } });
    await eventually(() => node.counts.invalidOutput > before, "the deep message is counted as invalid output");
    client.send({ type: "send", instance: "deep-ipc", action: "echo", data: "after" });
    assert.equal((await client.next((f) => f.type === "message" && f.action === "echo")).data, "after");
    await stillServing();
  });

  it("every JSON type, and objects of the wrong shape, on every internal channel leave both processes up", async () => {
    const gateway = fx.cluster.gateways[0];
    const node = fx.cluster.nodes[0];
    const payloads = [
      "null",
      "0",
      "1e400",
      "-1",
      "true",
      '"text"',
      "[]",
      "[null]",
      "{}",
      '{"type":null}',
      '{"type":7}',
      '{"type":"nope"}',
      '{"type":"join"}',
      '{"type":"join","user":null,"reply":"x"}',
      '{"type":"leave","client":"c"}',
      '{"type":"stop"}',
      '{"type":"resume","client":"c"}',
      '{"type":"closed"}',
      '{"type":"replay","instance":"steady"}',
      '{"type":"replay","instance":"steady","member":true,"dropped":0,"events":[null,1]}',
      '{"type":"takeover"}',
      '{"type":"lost"}',
      '{"type":"drain","deadlineMs":"soon"}',
      '{"type":"launched","instance":{}}',
      nested(20_000),
      `{"type":${nested(3000)}}`,
      "\uD800",
      "{",
    ];
    const channels = [keys.instanceChannel("steady"), keys.sessionChannel(good.session), keys.replyChannel(gateway.id), keys.events(), keys.nodeControl(node.id), keys.replyChannel(`node-${node.id}`)];
    const badBefore = (await gateway.metrics.badBusMessages.get()).values[0]?.value ?? 0;
    for (const channel of channels) {
      for (const payload of payloads) await fx.redis.client.publish(channel, payload);
    }
    await stillServing();
    const badAfter = (await gateway.metrics.badBusMessages.get()).values[0]?.value ?? 0;
    assert.ok(badAfter > badBefore, "the gateway counted what it dropped");
    assert.ok(node.counts.badBusMessages > 0, "the node counted what it dropped");
    // The session that received garbage on its own channel is still joined and answered.
    assert.equal((await good.request({ type: "ping" })).type, "pong");
  });
});

describe("hostile tickets", () => {
  const fx = useCluster({ extra: { auth: { secret: SECRET }, tasks: testTasks() } });

  it("a ticket whose sub has a lone surrogate is refused at the handshake, and cannot be minted", async () => {
    await assert.rejects(mintTicket(SECRET, { sub: "eve\uD800", tasks: ["echo"] }), (err: Error & { code?: string }) => err.code === "bad_request");
    // Minted elsewhere (any backend language): JSON escapes the lone surrogate, so it survives signing.
    const ticket = await new SignJWT({ tasks: ["echo"] })
      .setProtectedHeader({ alg: "HS256", typ: "JWT" })
      .setSubject("eve\uD800")
      .setExpirationTime(Math.floor(Date.now() / 1000) + 600)
      .sign(new TextEncoder().encode(SECRET));
    const ws = new WebSocket(`${fx.cluster.gateways[0].url}?ticket=${encodeURIComponent(ticket)}`);
    const frames: Record<string, any>[] = [];
    ws.on("message", (d) => frames.push(JSON.parse(String(d))));
    const code = await new Promise<number>((resolve) => ws.on("close", (c) => resolve(c)));
    assert.equal(code, 1008);
    assert.equal(frames[0]?.code, "unauthorized");
    assert.match(frames[0]?.message, /lone surrogate/);
    // A well-formed ticket for the same user still works: launching is no longer broken for anyone.
    const { ticket: fine } = await mintTicket(SECRET, { sub: "eve", tasks: ["echo"] });
    const client = await fx.cluster.raw(0, fine);
    assert.equal((await client.request({ type: "launch", task: "echo" })).type, "launched");
  });
});

describe("small guards", () => {
  it("redactUrl hides the whole password, @ included", () => {
    assert.equal(redactUrl("redis://:ngPw-123@secret@db.example:6379/0"), "redis://:***@db.example:6379/0");
    assert.equal(redactUrl("rediss://alice:p@ss:w@rd@db:6380"), "rediss://alice:***@db:6380");
    assert.equal(redactUrl("redis://onlyword@db:6379"), "redis://:***@db:6379");
    assert.equal(redactUrl("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
  });

  it("servman logs shows a task's control characters instead of obeying them", () => {
    assert.equal(escapeControl("\u001b[2Jcleared\u0007\ttab\u009b"), "\\x1b[2Jcleared\\x07\ttab\\x9b");
    assert.equal(escapeControl("plain ünïcödé"), "plain ünïcödé");
  });

  it("depth is measured without recursion, strings and escapes ignored", () => {
    assert.equal(jsonTextTooDeep(nested(100_000), 32), true);
    assert.equal(jsonTextTooDeep('{"a":"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"]]]"}', 2), false);
    assert.equal(valueTooDeep(JSON.parse(nested(100_000)), 32), true);
    assert.equal(valueTooDeep(JSON.parse(nested(32)), 32), false);
    assert.equal(valueTooDeep(JSON.parse(nested(33)), 32), true);
    assert.equal(valueTooDeep({ a: [{ b: 1 }] }, 3), false);
    assert.equal(valueTooDeep("text", 0), false);
  });
});
