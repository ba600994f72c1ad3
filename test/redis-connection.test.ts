/**
 * The connections createRedis opens for publishing send each event-loop turn's commands in one write
 * (tick-corked-redis.ts): nothing may be lost, reordered or left unanswered by it, before the
 * connection is ready, during a burst, or across a reconnect.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Redis } from "ioredis";
import { createRedis } from "../src/redis-connection.js";
import { eventually } from "./helpers/processes.js";
import { startRedis, type TestRedis } from "./helpers/redis-server.js";

describe("createRedis (commands batched per event-loop turn)", () => {
  let server: TestRedis;
  let sub: Redis;
  const received: string[] = [];

  before(async () => {
    server = await startRedis();
    sub = createRedis({ kind: "single", url: server.url }, { name: "test-sub", blocking: true }) as Redis;
    sub.on("message", (_channel: string, payload: string) => received.push(payload));
    await sub.subscribe("burst");
  });
  after(async () => {
    sub.disconnect();
    await server.stop();
  });

  it("delivers a burst published in one turn in order, and answers every command", async () => {
    const redis = createRedis({ kind: "single", url: server.url }, { name: "test-pub" });
    try {
      await redis.ping();
      received.length = 0;
      const replies: Promise<unknown>[] = [];
      for (let i = 0; i < 2_000; i++) {
        replies.push(redis.publish("burst", String(i)));
        if (i % 500 === 0) replies.push(redis.set(`k${i}`, String(i)));
      }
      replies.push(redis.get("k1500"));
      const results = await Promise.all(replies);
      assert.equal(results.at(-1), "1500");
      await eventually(() => received.length === 2_000, "every published message to arrive");
      assert.deepEqual(
        received,
        Array.from({ length: 2_000 }, (_, i) => String(i)),
      );
    } finally {
      redis.disconnect();
    }
  });

  it("sends commands issued before the connection is ready, and after a reconnect", async () => {
    const redis = createRedis({ kind: "single", url: server.url }, { name: "test-reconnect" });
    try {
      received.length = 0;
      let readies = 0;
      redis.on("ready", () => readies++);
      // Issued at once: queued until the connection is ready.
      const early = [redis.publish("burst", "early-1"), redis.publish("burst", "early-2")];
      assert.deepEqual(await Promise.all(early), [1, 1]);
      // The server drops the connection; ioredis opens a new socket.
      const killed = await server.client.call("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
      assert.ok(Number(killed) >= 1);
      await eventually(() => readies === 2, "the connection to come back");
      assert.deepEqual(await Promise.all([redis.publish("burst", "late-1"), redis.publish("burst", "late-2")]), [1, 1]);
      await eventually(() => received.length === 4, "every published message to arrive");
      assert.deepEqual(received, ["early-1", "early-2", "late-1", "late-2"]);
    } finally {
      redis.disconnect();
    }
  });
});
