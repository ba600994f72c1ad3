/**
 * Whether the gateway's Redis answers, for `/healthz` (docs/http-api.md): a connection can look
 * ready while Redis does not answer (a stopped or overloaded server), so the gateway sends a
 * `PING` every second and counts Redis unreachable once none was answered for 3 s.
 */
import type { RedisClient } from "../src/redis-connection.js";

const PING_MS = 1_000;
const STALE_MS = 3_000;

export class RedisHealth {
  private lastPong = Date.now();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly redis: RedisClient,
    private readonly sub: RedisClient,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.ping(), PING_MS);
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** True while both connections are ready and Redis answered a PING lately. */
  get reachable(): boolean {
    return this.redis.status === "ready" && this.sub.status === "ready" && Date.now() - this.lastPong <= STALE_MS;
  }

  private ping(): void {
    this.redis.ping().then(
      () => (this.lastPong = Date.now()),
      // Not logged: a PING that fails leaves `lastPong` to go stale, which /healthz reports, and
      // the connection logs the outage itself.
      () => {},
    );
  }
}
