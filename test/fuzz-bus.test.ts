/**
 * Property-based fuzzing of Servman's Redis channels (fast-check): every JSON type, messages of
 * each known type with fields missing, mistyped or hostile (deep, wide, lone surrogates, long),
 * and text that is not JSON, published on each channel a gateway or a node listens to (the
 * gateway's own fan-out channel among them). Redis is
 * trusted, but a process must not die of one message: after each batch, the gateway and the node
 * still serve a well-behaved client, and the bad messages were counted.
 *
 * Valid messages that act (a `stop` of the instance, a node `drain`, a `takeover` of the
 * observer's session, `lost`) are left out: they are commands, not attacks.
 * FUZZ_RUNS raises the count (`npm run fuzz`).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { Keys } from "../src/keys.js";
import { decodeClusterEvent, decodeNodeCommand, decodeToInstance, decodeToRequester, decodeToSession } from "../src/protocol/bus-parse.js";
import { hostilePayload } from "./helpers/hostile-json.js";
import { testTasks } from "./helpers/cluster.js";
import { useCluster } from "./helpers/use-cluster.js";

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const keys = new Keys("t");

const TYPES = [
  "message",
  "join",
  "leave",
  "stop",
  "resume",
  "ack",
  "joined",
  "join_rejected",
  "closed",
  "restarting",
  "restarted",
  "dropped",
  "stopping",
  "stopped",
  "alert",
  "launched",
  "replay",
  "takeover",
  "launch_error",
  "drain",
  "lost",
  "fanout",
  "barrier",
  "undelivered",
  "flushed",
  "nope",
  "",
];
/** Valid messages of these types act on the cluster (see the file's comment). */
const ACTING = new Set(["stop", "drain", "takeover", "lost", "closed", "leave"]);

const field = fc.oneof(
  fc.constantFrom("ghost", "", "c1", 0, -1, null, true, [], {}),
  hostilePayload.map((text) => ({ raw: text })),
  fc.string({ unit: "binary", maxLength: 40 }),
);

/** A message with a known or unknown type and a random subset of plausible fields. */
const shaped = fc
  .record(
    {
      type: fc.oneof(fc.constantFrom(...TYPES), fc.anything()),
      client: field,
      instance: field,
      reply: field,
      user: field,
      data: field,
      reason: field,
      events: fc.oneof(field, fc.array(field, { maxLength: 3 })),
      through: field,
      member: field,
      dropped: field,
      deadlineMs: field,
      gateway: field,
      sessions: fc.oneof(field, fc.array(field, { maxLength: 3 })),
      seq: field,
      id: field,
      event: field,
    },
    { requiredKeys: [] },
  )
  .map((record) => {
    // Hostile text is spliced in raw, so depth and bad escapes reach the decoder as they are.
    const raws: string[] = [];
    const json = JSON.stringify(record, (_k, v: unknown) => {
      if (v && typeof v === "object" && "raw" in v && typeof v.raw === "string") {
        raws.push((v as { raw: string }).raw);
        return `@@RAW${raws.length - 1}@@`;
      }
      return v;
    });
    return json.replace(/"@@RAW(\d+)@@"/g, (_m, i: string) => raws[Number(i)]);
  });

const payload = fc.oneof(
  shaped,
  shaped,
  hostilePayload,
  fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
  fc.string({ unit: "binary", maxLength: 200 }),
);

/** True when `text` is a valid message that would act on the cluster on some channel. */
function acts(text: string): boolean {
  // Session channel messages too: a valid `takeover` would close the observer (seed 42 makes one).
  for (const decode of [decodeToInstance, decodeToSession, decodeToRequester, decodeNodeCommand, decodeClusterEvent]) {
    const decoded = decode(text);
    if (decoded.ok && ACTING.has(decoded.message.type)) return true;
  }
  return false;
}

describe("fuzzing the Redis channels", () => {
  const fx = useCluster({ extra: { tasks: testTasks() } });

  it(`gateway and node: ${RUNS} batches of random messages on every channel leave both serving`, async () => {
    const gateway = fx.cluster.gateways[0];
    const node = fx.cluster.nodes[0];
    const good = await fx.cluster.raw();
    await good.request({ type: "launch", task: "echo", instance: "bus-target" });
    await good.request({ type: "join", instance: "bus-target" });
    const observer = await fx.cluster.raw();
    const channels = [
      keys.instanceChannel("bus-target"),
      keys.sessionChannel(observer.session),
      keys.replyChannel(gateway.id),
      keys.gatewayChannel(gateway.id, "bus-target"),
      keys.events(),
      keys.nodeControl(node.id),
      keys.replyChannel(`node-${node.id}`),
    ];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(channels.length - 1), payload), { minLength: 1, maxLength: 6 }), async (batch) => {
        fc.pre(batch.every(([, text]) => !acts(text)));
        for (const [c, text] of batch) await fx.redis.client.publish(channels[c], text);
        // A round trip through the gateway, Redis, the node and the service, behind the batch.
        const mark = n++;
        good.send({ type: "send", instance: "bus-target", action: "echo", data: { mark } });
        const echo = await good.next((f) => f.type === "message" && f.action === "echo" && f.data?.mark === mark);
        assert.equal(echo.instance, "bus-target");
        good.frames.length = 0;
        observer.frames.length = 0;
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
    assert.equal((await observer.request({ type: "ping" })).type, "pong", "the observer, whose channel got garbage, is still served");
    const gatewayBad = (await gateway.metrics.badBusMessages.get()).values[0]?.value ?? 0;
    assert.ok(gatewayBad > 0 && node.counts.badBusMessages > 0, `bad messages counted (gateway ${gatewayBad}, node ${node.counts.badBusMessages})`);
  });
});
