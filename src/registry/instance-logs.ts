/**
 * Instance logs and post-mortems in Redis: each instance's last lines (bounded), live lines for
 * `servman logs --follow`, and, once it has ended, how it ended (exit code, signal, last lines,
 * peak memory) for `servman inspect`. Both are kept for an hour after the end.
 */
import type { RedisClient } from "../redis-connection.js";
import type { Keys } from "../keys.js";
import { publish, publishIn } from "../pubsub.js";

/** One log line. */
export interface LogLine {
  /** ms since epoch */
  t: number;
  source: string;
  text: string;
}

/** How an instance ended. */
export interface PostMortem {
  instance: string;
  task: string;
  node: string;
  reason: string;
  code: number | null;
  signal: string | null;
  endedAt: number;
  restarts: number;
  peakRssMb: number | null;
  lastLines: string[];
}

/** The last log lines of an instance that Redis keeps. */
const REDIS_LOG_LINES = 1000;
/** How long logs and post-mortems outlive their instance. */
const KEPT_AFTER_END_S = 3600;

export class InstanceLogs {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** Appends a line (fire and forget; the three commands leave in one write). */
  append(id: string, line: LogLine): void {
    const json = JSON.stringify(line);
    const key = this.keys.instanceLogs(id);
    // Best effort: a line lost while Redis is unreachable costs nothing else, and the connection
    // logs that outage once (redis-connection.ts) rather than once per line here.
    this.redis.rpush(key, json).catch(() => {});
    this.redis.ltrim(key, -REDIS_LOG_LINES, -1).catch(() => {});
    publish(this.redis, this.keys.instanceLogChannel(id), json).catch(() => {});
  }

  /** The last `count` lines, oldest first. */
  async read(id: string, count = 100): Promise<LogLine[]> {
    const lines = await this.redis.lrange(this.keys.instanceLogs(id), -Math.max(1, count), -1);
    return lines.map((l) => JSON.parse(l) as LogLine);
  }

  /** Records how the instance ended, lets its logs expire, and tells followers it is over. */
  async ended(pm: PostMortem): Promise<void> {
    // The post-mortem, the logs and their live channel share the instance's hash tag: one slot.
    const tx = this.redis.multi().set(this.keys.postMortem(pm.instance), JSON.stringify(pm), "EX", KEPT_AFTER_END_S).expire(this.keys.instanceLogs(pm.instance), KEPT_AFTER_END_S);
    await publishIn(tx, this.redis, this.keys.instanceLogChannel(pm.instance), JSON.stringify({ end: pm.reason })).exec();
  }

  /** A new instance takes the id: the logs and post-mortem of an earlier one with it go. */
  async reset(id: string): Promise<void> {
    await this.redis.del(this.keys.instanceLogs(id), this.keys.postMortem(id));
  }

  /** How the instance ended, while it is kept. */
  async postMortem(id: string): Promise<PostMortem | null> {
    const json = await this.redis.get(this.keys.postMortem(id));
    return json === null ? null : (JSON.parse(json) as PostMortem);
  }
}
