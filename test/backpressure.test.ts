/**
 * A service that stops reading its input cannot grow its node: past the task's `maxQueuedBytes`
 * of text waiting for the process, client messages are dropped and their senders hear `dropped`
 * (docs/security.md#containment-inside-nodes). Both transports: stdin (`command` tasks) and Node
 * IPC (`module` tasks). Other instances on the node keep serving, and once the service reads
 * again its messages flow as before.
 */
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import type { Logger } from "pino";
import { clientOf, StalledDelivery } from "../nodes/stalled-delivery.js";
import type { RawClient } from "./helpers/cluster.js";
import { ECHO_SERVICE } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

const STALLING = fileURLToPath(new URL("./fixtures/stalling-service.js", import.meta.url));
const MAX_QUEUED = 1024 * 1024;
const BLOB_CHARS = 256 * 1024;
const BLOBS = 48;
/** A blob's task message beyond its data: `{"type":"message","client":"<21 characters>","action":"blob","data":""}`. */
const BLOB_OVERHEAD = JSON.stringify({ type: "message", client: "x".repeat(21), action: "blob", data: "" }).length;
const ECHOES = 20;

async function joinNew(client: RawClient, task: string): Promise<string> {
  const launched = await client.request({ type: "launch", task });
  assert.equal(launched.type, "launched", JSON.stringify(launched));
  assert.equal((await client.request({ type: "join", instance: launched.instance })).type, "joined");
  return launched.instance as string;
}

/** Sends `count` echoes to `instance` at once and checks every one comes back. */
async function echoes(client: RawClient, instance: string, count: number): Promise<void> {
  for (let i = 0; i < count; i++) client.send({ type: "send", instance, action: "echo", data: i });
  for (let i = 0; i < count; i++) {
    assert.equal((await client.next((f) => f.action === "echo" && f.instance === instance)).data, i);
  }
}

describe("a service that stops reading its input", () => {
  const fx = useCluster({
    extra: {
      tasks: {
        // Liveness off: the module fixture's blocked event loop sends no heartbeat.
        "stalling-command": { command: [process.execPath, STALLING], maxQueuedBytes: MAX_QUEUED, livenessTimeoutMs: 0 },
        "stalling-module": { module: STALLING, maxQueuedBytes: MAX_QUEUED, livenessTimeoutMs: 0 },
        echo: { module: ECHO_SERVICE },
      },
    },
  });

  for (const task of ["stalling-command", "stalling-module"]) {
    it(`${task}: client messages past maxQueuedBytes are dropped and told, the node stays bounded, and delivery resumes`, async () => {
      const node = fx.cluster.nodes[0];
      const client = await fx.cluster.raw();
      const stalled = await joinNew(client, task);
      const other = await joinNew(client, "echo");
      const resumeFile = join(mkdtempSync(join(tmpdir(), "servman-stall-")), "resume");
      const droppedBefore = node.counts.droppedForBackpressure;

      let peak = 0;
      const sampler = setInterval(() => (peak = Math.max(peak, node.queuedBytes(stalled))), 1);
      try {
        client.send({ type: "send", instance: stalled, action: "stall", data: { resumeFile } });
        const blob = "x".repeat(BLOB_CHARS);
        for (let i = 0; i < BLOBS; i++) client.send({ type: "send", instance: stalled, action: "blob", data: blob });
        // Published after the blobs on the same connection, so answered after the node took them all.
        await echoes(client, other, ECHOES);
        peak = Math.max(peak, node.queuedBytes(stalled));
      } finally {
        clearInterval(sampler);
      }

      const isDropped = (f: Record<string, any>) => f.type === "dropped" && f.instance === stalled;
      const dropped = client.frames.filter(isDropped);
      // Taken out, so that later waits see only later events.
      for (let i = client.frames.length - 1; i >= 0; i--) if (isDropped(client.frames[i])) client.frames.splice(i, 1);
      const droppedCount = dropped.reduce((sum, f) => sum + (f.count as number), 0);
      assert.ok(droppedCount > 0, `the sender heard dropped: ${JSON.stringify(dropped)}`);
      assert.equal(node.counts.droppedForBackpressure - droppedBefore, droppedCount, "the node counted them");
      // What waits for the process stays within the bound, or one message into an empty queue.
      assert.ok(peak <= MAX_QUEUED + BLOB_CHARS + 1024, `at most ${peak} characters queued for the process`);

      // Filled to just under the bound: a client message no longer fits, a join (the node's own message) still goes.
      const filler = MAX_QUEUED - node.queuedBytes(stalled) - BLOB_OVERHEAD - 10;
      client.send({ type: "send", instance: stalled, action: "blob", data: "x".repeat(filler) });
      await eventually(() => node.queuedBytes(stalled) > MAX_QUEUED - 100, "the filler to be queued");
      client.send({ type: "send", instance: stalled, action: "echo", data: "probe" });
      assert.equal((await client.next(isDropped)).count, 1, "the probe is dropped");
      const late = await fx.cluster.raw();
      const lateJoin = late.request({ type: "join", instance: stalled });
      await eventually(() => node.queuedBytes(stalled) > MAX_QUEUED, "the join to be queued past the bound");

      writeFileSync(resumeFile, "");
      assert.equal((await lateJoin).type, "joined", "the join sent during the stall went through");
      await eventually(() => node.queuedBytes(stalled) === 0, "the service to read what was queued for it");
      client.send({ type: "send", instance: stalled, action: "count" });
      const delivered = (await client.next((f) => f.action === "count" && f.instance === stalled)).data as number;
      assert.equal(delivered + droppedCount, BLOBS + 1, `${delivered} delivered (filler included) and ${droppedCount} dropped`);
      assert.ok(!client.frames.some((f) => f.action === "echo" && f.data === "probe"), "the dropped probe never arrives");

      // Reading again: messages flow as before, none dropped.
      await echoes(client, stalled, ECHOES);
      assert.deepEqual(client.frames.filter(isDropped), [], "nothing dropped once it reads");
      await client.request({ type: "stop", instance: stalled });
      await client.request({ type: "stop", instance: other });
    });
  }
});

describe("StalledDelivery", () => {
  const message = (client: string) => JSON.stringify({ type: "message", client, action: "a", data: "x".repeat(100) });

  it("tells each sender once per tick with its count, warns once per stall, and counts", async () => {
    const told: [string, number][] = [];
    const warnings: unknown[] = [];
    let counted = 0;
    const logger = { warn: (fields: unknown) => warnings.push(fields), info: () => {} } as unknown as Logger;
    const gate = new StalledDelivery(1024, { dropped: (client, count) => told.push([client, count]), countDropped: (count) => (counted += count) }, logger);
    assert.equal(gate.admit(message("a"), 0), true, "an empty queue takes any message");
    assert.equal(gate.admit(message("a"), 800), true, "what fits is delivered");
    for (const client of ["a", "b", "a"]) assert.equal(gate.admit(message(client), 1000), false);
    assert.deepEqual(told, [], "told at the end of the tick");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(told, [
      ["a", 2],
      ["b", 1],
    ]);
    assert.equal(counted, 3);
    assert.equal(gate.admit(message("b"), 5000), false);
    assert.equal(warnings.length, 1, "one warning for the whole stall");
    assert.deepEqual(warnings[0], { queuedBytes: 1000, maxQueuedBytes: 1024 });
    assert.equal(gate.admit(message("b"), 0), true);
    assert.equal(gate.admit(message("b"), 5000), false);
    assert.equal(warnings.length, 2, "a new stall warns again");
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(told.slice(2), [["b", 2]]);
  });

  it("reads the sender from the first bytes, else from a parse", () => {
    assert.equal(clientOf(message("Vx_3-k")), "Vx_3-k");
    assert.equal(clientOf(JSON.stringify({ type: "message", action: "a", client: "later" })), "later");
    assert.equal(clientOf(JSON.stringify({ type: "message", client: 'a"b', data: 1 })), 'a"b', "an escaped id is parsed");
    assert.equal(clientOf('{"type":"message","client":"unterminated'), undefined);
    assert.equal(clientOf('{"type":"message"}'), undefined);
  });
});
