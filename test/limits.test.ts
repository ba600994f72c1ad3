/** Gateway limits (docs/configuration.md#gateway, `gateway.limits`): each refuses with a clear error and is counted in /metrics. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { WebSocket } from "ws";
import { mintTicket } from "../src/auth/tickets.js";
import { type RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

const SECRET = "limits-secret-0123456789abcdef";
const limits = { messagesPerSecond: 50, burst: 20, maxConnectionsPerIp: 6, maxJoinsPerConnection: 2, maxBufferedBytes: 256 * 1024, maxInstancesPerUser: 2 };

describe("gateway limits", () => {
  const fx = useCluster({ extra: { gateway: { host: "127.0.0.1", port: 0, limits }, auth: { secret: SECRET } } });
  const ticket = async (sub: string, extra: Record<string, unknown> = {}) => (await mintTicket(SECRET, { sub, tasks: ["echo"], ...extra })).ticket;
  const metrics = async () => fx.cluster.gateways[0].metrics.registry.metrics();

  it("rate: refuses the excess with rate_limited (each request by its id) and goes on when the flood stops", async () => {
    const client = await fx.cluster.raw(0, await ticket("r1"));
    for (let i = 0; i < 30; i++) client.send({ type: "ping", id: i });
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => client.next((f) => f.id === i)));
    const limited = replies.filter((f) => f.type === "error");
    assert.ok(limited.length > 0 && limited.length <= 10, `${limited.length} refused`);
    for (const f of limited) {
      assert.equal(f.code, "rate_limited");
      assert.match(f.message, /50 messages per second/);
    }
    assert.equal(replies.filter((f) => f.type === "pong").length + limited.length, 30, "every request answered");
    // Sends carry no id: a run of them hears rate_limited once (after a pause that refills the bucket).
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 0; i < 40; i++) client.send({ type: "send", instance: "nowhere-" + i, action: "x" });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(client.frames.filter((f) => f.code === "rate_limited").length, 1, "one error for the run of sends");
    assert.equal((await client.request({ type: "ping" })).type, "pong");
    assert.equal(client.closeCode, null);
    await client.close();
  });

  it("rate: closes a connection that keeps flooding with 1008", async () => {
    const client = await fx.cluster.raw(0, await ticket("r2"));
    for (let i = 0; i < 200; i++) client.send({ type: "ping" });
    await new Promise((r) => client.ws.once("close", r));
    assert.equal(client.closeCode, 1008);
    assert.match(await metrics(), /servman_gateway_limited_total\{limit="rate"\} \d+/);
  });

  it("connections per IP: the one over the limit is refused with rate_limited and 1008", async () => {
    const open: RawClient[] = [];
    for (let i = 0; i < limits.maxConnectionsPerIp; i++) open.push(await fx.cluster.raw(0, await ticket(`c${i}`)));
    const extra = await ticket("extra");
    const refused = await new Promise<{ frame: any; code: number }>((resolve) => {
      const ws = new WebSocket(`${fx.cluster.gateways[0].url}?ticket=${extra}`);
      let frame: any;
      ws.on("message", (d) => (frame = JSON.parse(String(d))));
      ws.on("close", (code) => resolve({ frame, code }));
    });
    assert.equal(refused.code, 1008);
    assert.equal(refused.frame.code, "rate_limited");
    assert.match(refused.frame.message, /too many connections/);
    await open.pop()!.close();
    await eventually(async () => {
      try {
        open.push(await fx.cluster.raw(0, await ticket("again")));
        return true;
      } catch {
        return false;
      }
    }, "a connection to be accepted again");
    for (const c of open) await c.close();
    assert.match(await metrics(), /servman_gateway_limited_total\{limit="connections_per_ip"\} 1/);
  });

  it("instances per user: the launch over the quota is rate_limited until one ends; admins have none", async () => {
    const user = await fx.cluster.raw(0, await ticket("q1"));
    const a = await user.request({ type: "launch", task: "echo" });
    const b = await user.request({ type: "launch", task: "echo" });
    const over = await user.request({ type: "launch", task: "echo" });
    assert.equal(over.code, "rate_limited");
    assert.match(over.message, /quota/);
    await user.request({ type: "stop", instance: a.instance });
    const c = await user.request({ type: "launch", task: "echo" });
    assert.equal(c.type, "launched");
    // A crash frees the slot too: the node keeps the per-user count in step.
    await user.request({ type: "join", instance: c.instance });
    user.send({ type: "send", instance: c.instance, action: "crash" });
    await user.next((f) => f.type === "closed");
    assert.equal(await fx.redis.client.scard("{t}:user-instances:q1"), 1);
    const d = await user.request({ type: "launch", task: "echo" });
    assert.equal(d.type, "launched");
    const admin = await fx.cluster.raw(0, await ticket("root", { admin: true }));
    const launched = [];
    for (let i = 0; i < 3; i++) launched.push((await admin.request({ type: "launch", task: "echo" })).instance);
    for (const id of [b.instance, d.instance, ...launched]) assert.equal((await admin.request({ type: "stop", instance: id })).type, "stopped");
    assert.equal(await fx.redis.client.exists("{t}:user-instances:q1"), 0, "nothing owned, nothing kept");
    assert.match(await metrics(), /servman_gateway_limited_total\{limit="instances_per_user"\} 1/);
    await user.close();
    await admin.close();
  });

  it("slow consumers: a client that stops reading is disconnected, others are not", async () => {
    const reader = await fx.cluster.raw(0, await ticket("s1"));
    const { instance } = await reader.request({ type: "launch", task: "echo" });
    await reader.request({ type: "join", instance });
    const stalled = await fx.cluster.raw(0, await ticket("s2"));
    await stalled.request({ type: "join", instance });
    (stalled.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    stalled.send({ type: "send", instance, action: "flood", data: { count: 400, size: 64 * 1024 } });
    await eventually(async () => /servman_gateway_slow_consumers_total 1/.test(await metrics()), "the slow consumer to be cut off", 20_000);
    assert.equal((await reader.request({ type: "ping" })).type, "pong", "the reading client is unaffected");
    assert.equal((await reader.request({ type: "stop", instance })).type, "stopped");
    await reader.close();
    stalled.ws.terminate();
  });
});
