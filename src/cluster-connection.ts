/**
 * What the gateway, the node and the Launcher each open on a cluster: a command connection, a
 * subscriber connection, the keys of the cluster's prefix, and a `Requester` whose replies come
 * on the opener's own reply channel (the opener subscribes it and feeds `handleReply`).
 */
import type { Logger } from "pino";
import type { RedisTarget } from "./config/redis-target.js";
import { Keys } from "./keys.js";
import { Requester } from "./launch/requester.js";
import { createRedis, type RedisClient } from "./redis-connection.js";

/** The connections and helpers of one cluster member. */
export interface ClusterConnection {
  keys: Keys;
  /** Commands and publishes. */
  redis: RedisClient;
  /** Subscriptions only (blocking: its commands wait for a reconnect). */
  sub: RedisClient;
  replyChannel: string;
  requester: Requester;
}

/** Where to connect, and the names the member is known by. */
export interface ClusterConnectionOptions {
  redis: RedisTarget;
  prefix: string;
  /** Connection names in `CLIENT LIST` (each prefixed `servman:`). */
  names: { command: string; subscriber: string };
  /** Whose reply channel the requester listens on (`gw-…`, `node-…`, `launcher-…`). */
  requesterId: string;
  logger: Logger;
}

/** Opens the connections; nothing is subscribed yet. */
export function connectCluster(options: ClusterConnectionOptions): ClusterConnection {
  const { logger } = options;
  const keys = new Keys(options.prefix, { cluster: options.redis.kind === "cluster" });
  const redis = createRedis(options.redis, { name: `servman:${options.names.command}`, logger });
  const sub = createRedis(options.redis, { name: `servman:${options.names.subscriber}`, logger, blocking: true, subscriber: true });
  const replyChannel = keys.replyChannel(options.requesterId);
  const requester = new Requester({ redis, keys, replyChannel, logger });
  return { keys, redis, sub, replyChannel, requester };
}
