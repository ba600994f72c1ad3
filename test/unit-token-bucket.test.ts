/** The rate limiter (src/token-bucket.ts), on a clock the test sets: no waiting, no Redis. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TokenBucket } from "../src/token-bucket.js";

/** How many of `count` takes at time `now` succeed. */
function takes(bucket: TokenBucket, count: number, now: number): number {
  let taken = 0;
  for (let i = 0; i < count; i++) if (bucket.take(now)) taken++;
  return taken;
}

describe("TokenBucket", () => {
  it("starts full: a burst passes at once, the next take is refused", () => {
    const bucket = new TokenBucket(10, 5, 0);
    assert.equal(takes(bucket, 5, 0), 5);
    assert.equal(bucket.take(0), false);
  });

  it("refills at the rate: one token per 1000 / rate ms, not before", () => {
    const bucket = new TokenBucket(10, 5, 0);
    takes(bucket, 5, 0);
    assert.equal(bucket.take(99), false, "0.99 of a token is not a token");
    assert.equal(bucket.take(100), true, "the 0.99 token kept accruing: one whole token at 100 ms");
    assert.equal(bucket.take(100), false);
    assert.equal(takes(bucket, 10, 400), 3, "300 ms more: 3 tokens");
  });

  it("never holds more than burst, however long it was idle", () => {
    const bucket = new TokenBucket(1000, 3, 0);
    takes(bucket, 3, 0);
    assert.equal(takes(bucket, 100, 3_600_000), 3);
  });

  it("a refused take costs nothing: the fraction keeps accruing", () => {
    const bucket = new TokenBucket(2, 1, 0);
    assert.equal(bucket.take(0), true);
    for (let t = 0; t < 500; t += 50) assert.equal(bucket.take(t), false, `at ${t} ms`);
    // Just past the half second: ten steps of 0.1 token add up to a little under 1 in floating point.
    assert.equal(bucket.take(501), true, "half a second at 2/s: one token");
  });

  it("a sustained rate at exactly the refill passes every request", () => {
    const bucket = new TokenBucket(50, 1, 0);
    for (let i = 0; i <= 1000; i++) assert.equal(bucket.take(i * 20), true, `request ${i}`);
  });
});
