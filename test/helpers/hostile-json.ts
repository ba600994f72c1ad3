/**
 * Hostile JSON for the fuzz suites: the classes of input that once ended a process, generated on
 * purpose because random JSON almost never nests deep or wide enough to reach them.
 */
import fc from "fast-check";

/** JSON text of a hostile payload: deep, wide, ill-formed text, or long. */
export const hostilePayload: fc.Arbitrary<string> = fc.oneof(
  fc.integer({ min: 1, max: 20_000 }).map((depth) => "[".repeat(depth) + "]".repeat(depth)),
  fc.integer({ min: 1, max: 5_000 }).map((depth) => '{"a":'.repeat(depth) + "1" + "}".repeat(depth)),
  fc.integer({ min: 1, max: 4_000 }).map((keys) => `{${Array.from({ length: keys }, (_, i) => `"k${i}":${i}`).join(",")}}`),
  fc.constantFrom('"\\ud800"', '"\\udfff tail"', '{"\\ud800":1}', '"\u0000\u001b[2J"', "1e400", "-0", "123456789012345678901234567890"),
  fc.integer({ min: 1, max: 60_000 }).map((n) => JSON.stringify("y".repeat(n))),
  fc.jsonValue({ maxDepth: 6 }).map((v) => JSON.stringify(v)),
);
