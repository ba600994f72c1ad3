/**
 * Tells when Redis lost its data (restarted empty, or failed over to an empty replica):
 * an epoch key holds a random value that the first process to find it missing sets. A process
 * that sees another value than the one it knew writes back what it owns (nodes: their instances;
 * gateways: their sessions). Each hash-tag family has its own epoch key (`{<p>}:epoch`,
 * `{<p>:sessions}:epoch`): on a Redis Cluster the shard holding one may lose its data alone.
 */
import { nanoid } from "nanoid";
import type { RedisClient } from "../redis-connection.js";

export class EpochWatch {
  /** The epoch last seen; undefined before the first check. */
  private epoch: string | undefined;

  constructor(
    private readonly redis: RedisClient,
    /** The epoch key of the slot whose data the watcher's owner writes back. */
    private readonly key: string,
  ) {}

  /**
   * Runs `rewrite` when Redis's epoch differs from the one seen at the previous check (never on
   * the first). The new epoch counts as seen only once `rewrite` succeeded, so a failed rewrite is
   * tried again at the next check. Throws on Redis errors and on `rewrite`'s.
   */
  async check(rewrite: () => Promise<void>): Promise<void> {
    const replies = await this.redis.multi().set(this.key, nanoid(16), "NX").get(this.key).exec();
    const current = replies?.[1]?.[1];
    if (typeof current !== "string") return;
    if (this.epoch !== undefined && this.epoch !== current) await rewrite();
    this.epoch = current;
  }
}
