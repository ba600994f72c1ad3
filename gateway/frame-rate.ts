/**
 * A connection's frame rate limit (`gateway.limits.messagesPerSecond` and `burst`): a token
 * bucket taken before any parsing, and the run of refused frames that ends the connection.
 */
import type { GatewayLimits } from "../src/config/options.js";
import { TokenBucket } from "../src/token-bucket.js";

/**
 * What to do with a frame: `pass` (handle it), `refuse` (drop it; `first` on the first of a run,
 * which is answered even without an id) or `close` (a flood: more than `burst` refused in a row).
 */
export type FrameVerdict = { kind: "pass" } | { kind: "refuse"; first: boolean } | { kind: "close" };

export class FrameRate {
  private readonly bucket: TokenBucket;
  /** Frames refused in a row; one passed ends the run. */
  private refusedInRow = 0;

  constructor(private readonly limits: Pick<GatewayLimits, "messagesPerSecond" | "burst">) {
    this.bucket = new TokenBucket(limits.messagesPerSecond, limits.burst);
  }

  /** Takes one frame from the bucket. */
  take(): FrameVerdict {
    if (this.bucket.take()) {
      this.refusedInRow = 0;
      return { kind: "pass" };
    }
    this.refusedInRow++;
    return this.refusedInRow > this.limits.burst ? { kind: "close" } : { kind: "refuse", first: this.refusedInRow === 1 };
  }
}
