/**
 * The fast path of `fanout` messages on a gateway's channel (src/protocol/fanout-scan.ts) against
 * the slow path it stands in for (`splitEvent`, then `decodeToGateway`): on fanouts as nodes
 * write them, with ids of every kind, and on mutated and random text. Whatever the fast path
 * takes, the slow path takes too, with the same fields and event. FUZZ_RUNS raises the count.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { EVENT_KEY } from "../src/protocol/bus-messages.js";
import { decodeToGateway, splitEvent } from "../src/protocol/bus-parse.js";
import { scanFanout } from "../src/protocol/fanout-scan.js";
import { pino } from "pino";
import { MemberDelivery } from "../nodes/member-delivery.js";

const RUNS = Math.max(2_000, Number(process.env.FUZZ_RUNS ?? 0));

/** A fanout as MemberDelivery writes it. */
function written(instance: string, seq: number, sessions: string[], prev: number, run: string, event: string): string {
  const head = JSON.stringify({ type: "fanout", instance, seq, sessions, prev, run });
  return `${head.slice(0, -1)}${EVENT_KEY}${event}}`;
}

/** Asserts that the fast path agrees with the slow path on `payload`; returns whether it took it. */
function agrees(payload: string): boolean {
  const fast = scanFanout(payload);
  if (fast === null) return false;
  const parts = splitEvent(payload);
  assert.ok(parts, `no event for the slow path: ${payload.slice(0, 200)}`);
  const decoded = decodeToGateway(parts.head);
  assert.ok(decoded.ok, `the slow path refuses what the fast path took: ${payload.slice(0, 200)}`);
  assert.equal(decoded.message.type, "fanout");
  const { instance, seq, sessions, prev, run } = decoded.message;
  assert.deepEqual({ instance, seq, sessions, prev, run, event: parts.event }, fast);
  return true;
}

const event = `{"type":"message","instance":"room-1","action":"echo","data":{"seq":1}}`;

describe("the fanout fast path", () => {
  it("takes fanouts as nodes write them", () => {
    assert.ok(agrees(written("room-1", 1, ["V1StGXR8_Z5jdHi6B-myT"], 0, "Ab3_x-9zQk", event)));
    assert.ok(agrees(written("room-1", 123456789012345, ["a", "b", "c"], 123456789012344, "r", `{"type":"closed","instance":"room-1","reason":"stopped"}`)));
    assert.ok(agrees(written("x".repeat(256), 0, ["s".repeat(256)], 0, "r", "{}")));
  });

  it("takes what a node's delivery writes: JSON.stringify of the head, the event spliced in last", () => {
    const published: Array<[string, string]> = [];
    const host = {
      publishCounted: (channel: string, payload: string) => (published.push([channel, payload]), Promise.resolve(1)),
      publish: () => {},
      settled: () => Promise.resolve(),
      sessionChannel: (client: string) => `s:${client}`,
      gatewayChannel: (gateway: string) => `g:${gateway}`,
    };
    const delivery = new MemberDelivery("room-1", host, pino({ level: "silent" }));
    delivery.route("c1", "gw-a");
    delivery.route("c2", "gw-b");
    delivery.route("c3", "gw-a");
    delivery.send(event, ["c1", "c2", "c3"]);
    delivery.send(event, ["c2"]);
    assert.deepEqual(
      published.map(([channel]) => channel),
      ["g:gw-a", "g:gw-b", "g:gw-b"],
    );
    const run = scanFanout(published[0][1])!.run;
    const expected = [
      { seq: 1, sessions: ["c1", "c3"], prev: 0 },
      { seq: 1, sessions: ["c2"], prev: 0 },
      { seq: 2, sessions: ["c2"], prev: 1 },
    ];
    published.forEach(([, payload], i) => {
      const { seq, sessions, prev } = expected[i];
      assert.equal(payload, written("room-1", seq, sessions, prev, run, event));
      assert.ok(agrees(payload));
    });
    delivery.close();
  });

  it("leaves other forms to the slow path", () => {
    const declined = [
      written("room-1", 1, [], 0, "r", event), // no session: the slow path refuses it
      written("", 1, ["a"], 0, "r", event),
      written("x".repeat(257), 1, ["a"], 0, "r", event),
      written("room-1", 1, ["a\\b"], 0, "r", event),
      written("room-1", 1, ['a"b'], 0, "r", event),
      written("room-1", 1.5, ["a"], 0, "r", event),
      written("room-1", -1, ["a"], 0, "r", event),
      written("room-1", 2 ** 53, ["a"], 0, "r", event),
      written("room-1", 1, ["a"], 0, "\ud800", event),
      `{"type":"fanout","instance":"room-1","seq":01,"sessions":["a"],"prev":0,"run":"r","event":{}}`,
      `{"type":"fanout","seq":1,"instance":"room-1","sessions":["a"],"prev":0,"run":"r","event":{}}`,
      `{"type":"fanout","instance":"room-1","seq":1,"sessions":["a"],"run":"r","event":{}}`,
      `{"type":"fanout","instance":"room-1","seq":1,"sessions":["a",],"prev":0,"run":"r","event":{}}`,
      `{"type":"fanout", "instance":"room-1","seq":1,"sessions":["a"],"prev":0,"run":"r","event":{}}`,
      `{"type":"barrier","instance":"room-1","client":"a","id":1}`,
    ];
    for (const payload of declined) {
      assert.equal(agrees(payload), false, payload);
      // The slow path decides; it must not throw.
      const parts = splitEvent(payload);
      decodeToGateway(parts ? parts.head : payload);
    }
  });

  it("agrees with the slow path on random ids, numbers and mutations", () => {
    const ident = fc.oneof(
      { arbitrary: fc.constantFrom("room-1", "V1StGXR8_Z5jdHi6B-myT", "a"), weight: 6 },
      { arbitrary: fc.oneof(fc.constant(""), fc.string({ maxLength: 260 }), fc.string({ unit: "binary", maxLength: 20 })), weight: 1 },
    );
    const num = fc.oneof({ arbitrary: fc.nat(), weight: 6 }, { arbitrary: fc.oneof(fc.integer({ min: -5, max: 5 }), fc.double(), fc.constant(2 ** 53 + 2)), weight: 1 });
    const fanout = fc
      .tuple(ident, num, fc.array(ident, { maxLength: 5 }), num, ident, fc.oneof(fc.constant(event), fc.json()))
      .map(([instance, seq, sessions, prev, run, ev]) => written(instance, seq, sessions, prev, run, ev));
    const mutated = fc.tuple(fanout, fc.nat(), fc.constantFrom("", " ", '"', ",", "]", "}", "0", "\\", "-", ".", "e")).map(([text, at, insert]) => {
      const k = at % (text.length + 1);
      return text.slice(0, k) + insert + text.slice(k + (insert === "" ? 1 : 0));
    });
    let taken = 0;
    fc.assert(
      fc.property(fc.oneof(fanout, mutated), (payload) => {
        if (agrees(payload)) taken++;
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
    assert.ok(taken > RUNS / 20, `the fast path took only ${taken} of ${RUNS}`);
  });
});
