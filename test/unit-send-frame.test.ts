/**
 * The fast path of `send` frames (src/protocol/send-frame.ts, src/protocol/json-scan.ts) against
 * the slow path it stands in for (`parseClientFrame`, then `JSON.stringify` of the message) and
 * against `JSON.parse` itself: on a corpus of hand-picked frames, the hostile payloads of the fuzz
 * suites, random JSON, and random text from JSON's alphabet. Whatever the fast path takes, the
 * slow path takes too, with the same fields and byte for byte the same message; whatever it
 * declines, the slow path still answers. FUZZ_RUNS raises the count of random cases.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseClientFrame, type SendRequest } from "../src/protocol/client-messages.js";
import { scanValue } from "../src/protocol/json-scan.js";
import { scanSendFrame, sendMessageText } from "../src/protocol/send-frame.js";
import { hostilePayload } from "./helpers/hostile-json.js";

const RUNS = Math.max(2_000, Number(process.env.FUZZ_RUNS ?? 0));
const CLIENT = "Vq3_x-client";

/** What the slow path relays for a valid `send` (gateway/session.ts, onSend). */
function slowMessage(req: SendRequest): string {
  const message: Record<string, unknown> = { type: "message", client: CLIENT };
  if (req.seq !== undefined) message.seq = req.seq;
  Object.assign(message, { action: req.action, data: req.data ?? null });
  if (req.channel !== undefined) message.channel = req.channel;
  return JSON.stringify(message);
}

/** Asserts that the fast path agrees with the slow path on `text`; returns whether it took the frame. */
function agrees(text: string, maxDepth = 32): boolean {
  const fast = scanSendFrame(text, maxDepth);
  if (fast === null) return false;
  const slow = parseClientFrame(text, maxDepth);
  assert.ok(slow.ok, `the fast path took a frame the slow path refuses: ${text.slice(0, 200)}`);
  const req = slow.request;
  assert.equal(req.type, "send", text.slice(0, 200));
  const send: SendRequest = req;
  assert.equal(fast.instance, send.instance);
  assert.ok(Object.is(fast.id, send.id), `id ${String(fast.id)} vs ${String(send.id)}`);
  assert.equal(fast.ack, send.ack === true);
  assert.equal(fast.seq, send.seq);
  assert.equal(sendMessageText(CLIENT, fast), slowMessage(send), text.slice(0, 200));
  return true;
}

/** A `send` frame around `data` (JSON text). */
const sendWith = (data: string) => `{"type":"send","instance":"room-1","action":"move","data":${data}}`;

describe("the send fast path", () => {
  it("takes the frames clients usually send", () => {
    const common = [
      `{"type":"send","instance":"room-1","action":"echo","data":{"seq":1}}`,
      `{"type":"send","instance":"room-1","action":"echo"}`,
      `{"type":"send","seq":12,"instance":"room-1","action":"echo","data":{"seq":1}}`,
      `{"type":"send","instance":"room-1","action":"echo","seq":1e2,"id":3,"ack":true}`,
      `{"type":"send","id":7,"instance":"room-1","action":"echo","data":[1,2.5,-3,"x",true,false,null],"ack":true}`,
      `{"type":"send","id":"r-1","instance":"room-1","action":"chat","data":"h\\u00e9llo"}`.replace("\\u00e9", "é"),
      `{"type":"send","instance":"room-1","action":"pos","data":{"x":0.1,"y":-12.75,"z":1e+21},"channel":"moves"}`,
      ` { "type" : "send" , "instance" : "room-1" , "action" : "a" , "data" : {"a":"\\n\\t\\"\\\\\\u0001"} } `,
      `{"type":"send","instance":"room-1","action":"a","data":{"__proto__":{"x":1}},"extra":{"future":[1, 2]}}`,
      `{"type":"send","instance":"room-1","action":"emoji 😀","data":"😀"}`,
    ];
    for (const text of common) assert.ok(agrees(text), `fast path declined ${text}`);
  });

  it("leaves to the slow path what it cannot vouch for, and the slow path still answers it", () => {
    const declined = [
      sendWith(`{"a": 1}`), // whitespace inside data
      sendWith(`{"a":1,"a":2}`), // repeated key: parsing keeps the last
      sendWith(`{"b":1,"1":2}`), // index key: parsing moves it first
      sendWith("1.0"),
      sendWith("1e2"),
      sendWith("-0"),
      sendWith("1e400"),
      sendWith("123456789012345678901234567890"),
      sendWith(`"\\/"`),
      sendWith(`"\\u0041"`),
      sendWith(`"\\ud800"`),
      sendWith(`"\ud800"`),
      sendWith(`{${Array.from({ length: 40 }, (_, i) => `"k${i}":${i}`).join(",")}}`),
      sendWith("[".repeat(40) + "]".repeat(40)),
      `{"type":"send","type":"send","instance":"room-1","action":"a"}`,
      `{"typ\\u0065":"send","instance":"room-1","action":"a"}`,
      `{"type":"send","instance":"room-1","action":"a\\u0062"}`,
      `{"type":"send","instance":"room 1","action":"a"}`,
      `{"type":"send","instance":"room-1","action":""}`,
      `{"type":"send","instance":"room-1","action":"${"a".repeat(257)}"}`,
      `{"type":"send","instance":"room-1","action":"a","channel":null}`,
      `{"type":"send","instance":"room-1","action":"a","ack":1}`,
      `{"type":"send","instance":"room-1","action":"a","id":1e400}`,
      `{"type":"send","instance":"room-1","action":"a","id":{}}`,
      `{"type":"send","instance":"room-1","action":"a"} x`,
      `{"type":"send","instance":"room-1","action":"a",}`,
      `\ufeff{"type":"send","instance":"room-1","action":"a"}`,
      `{"type":"join","instance":"room-1"}`,
      `{"instance":"room-1","action":"a"}`,
      "",
      "[]",
    ];
    for (const text of declined) {
      assert.equal(agrees(text), false, `fast path took ${text.slice(0, 100)}`);
      // The slow path decides, as it always did (valid or not); it must not throw.
      parseClientFrame(text, 32);
    }
  });

  it("agrees with the slow path on hostile payloads and random JSON in send frames", () => {
    const data = fc.oneof(
      hostilePayload,
      fc.json({ maxDepth: 6 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v, null, 1)),
    );
    let taken = 0;
    fc.assert(
      fc.property(data, fc.integer({ min: 2, max: 40 }), (payload, maxDepth) => {
        if (agrees(sendWith(payload), maxDepth)) taken++;
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
    assert.ok(taken > RUNS / 10, `the fast path took only ${taken} of ${RUNS}`);
  });

  it("agrees with the slow path on random frames and on text from JSON's alphabet", () => {
    const frame = fc.oneof(
      fc
        .record(
          {
            type: fc.constantFrom("send", "join", "Send"),
            id: fc.oneof(fc.string({ maxLength: 130 }), fc.double(), fc.integer(), fc.anything()),
            instance: fc.oneof(fc.constantFrom("room-1", "x".repeat(64), "x".repeat(65), "a:b", ""), fc.string()),
            action: fc.oneof(fc.string({ maxLength: 260 }), fc.anything()),
            data: fc.anything(),
            channel: fc.oneof(fc.string({ maxLength: 260 }), fc.anything()),
            ack: fc.oneof(fc.boolean(), fc.anything()),
            other: fc.anything(),
          },
          { requiredKeys: [] },
        )
        .map((v) => JSON.stringify(v) ?? "null"),
      fc.string({ unit: fc.constantFrom(...'{}[]",: \n\t\\/u0123456789-+.eEtrfalsn\ud800\u0001aé'), maxLength: 80 }).map((s) => `{"type":"send","instance":"room-1","action":"a","data":${s}}`),
      fc.string({ unit: fc.constantFrom(...'{}[]",: \\u019-.etrfalsn'), maxLength: 60 }),
    );
    fc.assert(
      fc.property(frame, (text) => {
        agrees(text);
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
  });
});

describe("the JSON scanner", () => {
  /** Checks scanValue against JSON.parse (validity) and JSON.stringify (canonical form) on `text`. */
  function scannerAgrees(text: string, maxDepth: number): void {
    let parsed: { value: unknown } | null = null;
    try {
      parsed = { value: JSON.parse(text) };
    } catch {
      // invalid: the scanner must say so
    }
    const loose = scanValue(text, 0, 1, maxDepth, false);
    const whole = loose === text.length;
    if (!parsed) assert.ok(!whole, `took invalid JSON: ${text.slice(0, 100)}`);
    const canonical = scanValue(text, 0, 1, maxDepth, true);
    if (canonical === text.length) {
      assert.ok(parsed, `canonical but invalid: ${text.slice(0, 100)}`);
      assert.equal(JSON.stringify(parsed.value), text, "canonical text is what JSON.stringify writes");
    }
  }

  it("agrees with JSON.parse and JSON.stringify on random and hostile text", () => {
    const text = fc.oneof(
      hostilePayload,
      fc.json({ maxDepth: 6 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc.string({ unit: fc.constantFrom(...'{}[]",: \n\\/u0123456789-+.eEtrfalsn\ud800\udc00\u001faé'), maxLength: 40 }),
    );
    fc.assert(
      fc.property(text, fc.integer({ min: 1, max: 40 }), (t, maxDepth) => scannerAgrees(t, maxDepth)),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
  });

  it("takes a number as canonical exactly when JSON.stringify writes it so", () => {
    const digits = (min: number, max: number) => fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: min, maxLength: max });
    const number = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }).map((x) => JSON.stringify(x)),
      fc
        .tuple(fc.boolean(), digits(1, 18), digits(0, 18), fc.option(fc.integer({ min: -30, max: 30 })))
        .map(([minus, int, frac, exp]) => `${minus ? "-" : ""}${int.replace(/^0+(?=\d)/, "")}${frac === "" ? "" : `.${frac}`}${exp === null ? "" : `e${exp}`}`),
      // Around the limits of the shortcut: 14 to 17 significant digits, 4 to 7 zeros after "0.".
      fc.tuple(digits(14, 17), fc.integer({ min: 1, max: 16 })).map(([d, point]) => `${d.slice(0, point).replace(/^0+(?=\d)/, "")}.${d.slice(point) || "5"}`),
      fc.tuple(fc.integer({ min: 4, max: 7 }), digits(1, 17)).map(([zeros, d]) => `0.${"0".repeat(zeros)}${d}`),
      fc.tuple(fc.double({ min: 1e-7, max: 1e6, noNaN: true }), fc.integer({ min: 14, max: 17 })).map(([x, precision]) => x.toPrecision(precision)),
      // 16 significant digits a double does not keep, and the edges of the fixed notation.
      fc.constantFrom("0.00009892852385726706", "832.5320300175552", "0.0000001", "0.000001", "0.0000012", "123456789012345.6", "1234567890123456", "1e21", "1e+21", "-0.0"),
    );
    fc.assert(
      fc.property(number, (t) => {
        const canonical = String(Number(t)) === t;
        assert.equal(scanValue(t, 0, 1, 1, true) === t.length, canonical, t);
        assert.equal(scanValue(t, 0, 1, 1, false), t.length, t);
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
  });

  it("takes what JSON.parse takes, within its depth", () => {
    fc.assert(
      fc.property(fc.json({ maxDepth: 8 }), (t) => {
        assert.equal(scanValue(t, 0, 1, 1_000, false), t.length, t.slice(0, 100));
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? 42) },
    );
  });

  it("stops at the first level past its bound, however deep the text goes", () => {
    assert.equal(scanValue("[".repeat(100_000) + "]".repeat(100_000), 0, 1, 1_000, false), -1);
    assert.equal(scanValue('{"a":'.repeat(50_000) + "1" + "}".repeat(50_000), 0, 1, 1_000, false), -1);
    assert.equal(scanValue("[".repeat(1_000) + "]".repeat(1_000), 0, 1, 1_000, false), 2_000);
    assert.equal(scanValue("[".repeat(1_001) + "]".repeat(1_001), 0, 1, 1_000, false), -1);
  });
});
