/**
 * Property-based fuzzing (fast-check): random and malformed frames at a gateway, random lines from
 * a task process at its node. Both stay up, memory stays bounded, and a well-behaved client on the
 * same gateway sees every one of its messages, in order, throughout. FUZZ_RUNS raises the count
 * (`npm run fuzz` runs many more than the suite, with fuzz-bus and fuzz-http).
 *
 * The classes of input that once ended a process are generated on purpose, inside otherwise
 * valid frames, since a random frame almost never is valid enough to reach the code that walks
 * its payload: nesting thousands of levels deep, objects with thousands of keys, lone
 * surrogates, and strings near the frame limit.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { WebSocket } from "ws";
import { RawClient, testTasks } from "./helpers/cluster.js";
import { hostilePayload } from "./helpers/hostile-json.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";
import { fileURLToPath } from "node:url";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const GARBAGE_TASK = fileURLToPath(new URL("./fixtures/garbage-task.js", import.meta.url));
const MAX_FRAME = 64 * 1024;

/** A valid envelope of each request type, a hostile payload where the protocol takes any JSON. */
const hostileRequest: fc.Arbitrary<{ text: string }> = fc
  .tuple(fc.constantFrom("send-joined", "send-other", "join", "launch", "resume", "ping"), hostilePayload, fc.constantFrom("fuzz-target", "ghost"))
  .map(([kind, payload, instance]) => {
    switch (kind) {
      case "send-joined":
        return { text: `{"type":"send","id":"h","instance":"fuzz-target","action":"echo","data":${payload}}` };
      case "send-other":
        return { text: `{"type":"send","id":"h","instance":"${instance}","action":"a","data":${payload}}` };
      case "join":
        return { text: `{"type":"join","id":"h","instance":"${instance}","data":${payload}}` };
      case "launch":
        return { text: `{"type":"launch","id":"h","task":"nope","args":{"x":${payload}}}` };
      case "resume":
        return { text: `{"type":"resume","id":"h","session":${payload},"resume":"x"}` };
      case "ping":
        return { text: `{"type":"ping","id":"h","extra":${payload}}` };
    }
  });

/** One thing a hostile client may send: text (valid or not) or binary. */
const frame: fc.Arbitrary<{ text?: string; binary?: Uint8Array }> = fc.oneof(
  fc.string({ unit: "binary", maxLength: 300 }).map((text) => ({ text })),
  fc.json({ maxDepth: 5 }).map((text) => ({ text })),
  fc
    .record(
      {
        type: fc.constantFrom("launch", "join", "send", "leave", "stop", "resume", "ping", "dance", ""),
        id: fc.oneof(fc.string(), fc.integer(), fc.anything()),
        task: fc.oneof(fc.constantFrom("echo", "nope", "a:b", ""), fc.anything()),
        instance: fc.oneof(fc.constantFrom("ghost", "../../etc", "x".repeat(100), "fuzz-target"), fc.anything()),
        action: fc.oneof(fc.string(), fc.anything()),
        data: fc.anything(),
        options: fc.anything(),
        args: fc.anything(),
      },
      { requiredKeys: ["type"] },
    )
    .map((v) => ({ text: JSON.stringify(v) ?? "null" })),
  fc.integer({ min: 1, max: 20_000 }).map((depth) => ({ text: "[".repeat(depth) + "]".repeat(depth) })),
  fc.integer({ min: 1, max: 5_000 }).map((depth) => ({ text: '{"a":'.repeat(depth) + "1" + "}".repeat(depth) })),
  fc.uint8Array({ maxLength: 300 }).map((binary) => ({ binary })),
  hostileRequest,
  hostileRequest,
  fc.constantFrom({ text: "x".repeat(MAX_FRAME + 1) }, { text: "\uD800" }, { text: "" }, { text: '{"type":"send","instance":"fuzz-target","action":"echo","data":' + "9".repeat(2000) + "}" }),
);

describe("fuzzing", () => {
  const fx = useCluster({
    extra: {
      gateway: { host: "127.0.0.1", port: 0, limits: { maxFrameBytes: MAX_FRAME, messagesPerSecond: 100_000, burst: 100_000 } },
      tasks: { ...testTasks(), garbage: { command: [process.execPath, GARBAGE_TASK], env: { SEED: "7", GARBAGE_LINES: "200" } } },
    },
  });

  it(`gateway: ${RUNS} random frames leave it up and a well-behaved client unaffected`, async () => {
    const gateway = fx.cluster.gateways[0];
    const good = await fx.cluster.raw();
    await good.request({ type: "launch", task: "echo", instance: "fuzz-target" });
    await good.request({ type: "join", instance: "fuzz-target" });
    let sent = 0;
    const echoes: number[] = [];
    good.ws.on("message", (d) => {
      const f = JSON.parse(String(d));
      if (f.type === "message" && f.action === "echo" && typeof f.data?.n === "number") echoes.push(f.data.n);
    });
    const rssBefore = process.memoryUsage().rss;
    // Joined, so that hostile payloads in its sends reach the node and the service, not only the gateway.
    const connectHostile = async () => {
      const client = await RawClient.connect(gateway.url);
      await client.request({ type: "join", instance: "fuzz-target" });
      return client;
    };
    let hostile = await connectHostile();
    await fc.assert(
      fc.asyncProperty(fc.array(frame, { minLength: 1, maxLength: 5 }), async (frames) => {
        if (hostile.ws.readyState !== WebSocket.OPEN) hostile = await connectHostile();
        for (const f of frames) {
          if (f.binary) hostile.ws.send(f.binary, { binary: true });
          else hostile.ws.send(f.text!);
          // Interleaved valid traffic from the well-behaved client.
          good.send({ type: "send", instance: "fuzz-target", action: "echo", data: { n: sent++ } });
        }
        if (hostile.ws.readyState === WebSocket.OPEN) {
          const pong = await hostile.request({ type: "ping" }).catch(() => null);
          // Only an oversized frame may end the hostile connection (1009).
          assert.ok(pong?.type === "pong" || hostile.closeCode === 1009, `gateway stopped answering: ${JSON.stringify(frames).slice(0, 300)}`);
        } else {
          assert.equal(hostile.closeCode, 1009);
        }
        hostile.frames.length = 0;
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
    await eventually(() => echoes.length === sent, `all ${sent} echoes of the well-behaved client`, 20_000);
    assert.deepEqual(
      echoes,
      Array.from({ length: sent }, (_, n) => n),
      "complete and in order",
    );
    assert.equal((await good.request({ type: "ping" })).type, "pong");
    await hostile.close();
    await eventually(() => gateway.connections === 1, "only the well-behaved connection to remain");
    const grownMb = (process.memoryUsage().rss - rssBefore) / 1024 / 1024;
    assert.ok(grownMb < 300, `memory grew by ${grownMb.toFixed(0)} MB`);
    await good.request({ type: "stop", instance: "fuzz-target" });
  });

  it("node: a task spewing random lines, wrong shapes and an endless line is contained", async () => {
    const client = await fx.cluster.raw();
    const neighbour = await client.request({ type: "launch", task: "echo" });
    await client.request({ type: "join", instance: neighbour.instance });
    const garbage = await client.request({ type: "launch", task: "garbage" });
    assert.equal(garbage.type, "launched", JSON.stringify(garbage));
    assert.equal((await client.request({ type: "join", instance: garbage.instance })).type, "joined");
    for (let n = 0; n < 5; n++) {
      client.send({ type: "send", instance: garbage.instance, action: "any", data: { n } });
      client.send({ type: "send", instance: neighbour.instance, action: "echo", data: { n } });
    }
    const fromGarbage: number[] = [];
    const fromNeighbour: number[] = [];
    await eventually(
      () => {
        for (const f of client.frames.splice(0)) {
          if (f.action !== "echo") continue;
          (f.instance === garbage.instance ? fromGarbage : fromNeighbour).push(f.data.n);
        }
        return fromGarbage.length === 5 && fromNeighbour.length === 5;
      },
      "echoes from both instances",
      30_000,
    );
    assert.deepEqual(fromGarbage, [0, 1, 2, 3, 4], "valid messages among the garbage still count");
    assert.deepEqual(fromNeighbour, [0, 1, 2, 3, 4]);
    const node = fx.cluster.nodes[0];
    assert.ok(node.counts.invalidOutput >= 1000, `${node.counts.invalidOutput} invalid lines counted`);
    for (const id of [neighbour.instance, garbage.instance]) assert.equal((await client.request({ type: "stop", instance: id })).type, "stopped");
  });
});
