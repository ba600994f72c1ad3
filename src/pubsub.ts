/**
 * Publishing and subscribing the same way on every topology. On one server (or a Sentinel
 * master) Servman uses `PUBLISH`/`SUBSCRIBE`, which Redis 6.2 has. On a Redis Cluster a plain
 * `PUBLISH` is broadcast to every shard, so relay traffic could never spread: there every
 * channel is a sharded one (`SPUBLISH`/`SSUBSCRIBE`), living on the master of its slot, and the
 * subscriber connection keeps one connection per master (docs/redis.md#topologies).
 *
 * Every caller goes through these functions; nothing else calls `publish`, `subscribe` or `PUBSUB`.
 */
import { Cluster, type ChainableCommander } from "ioredis";
import type { RedisClient } from "./redis-connection.js";

/** Whether `redis` talks to a Redis Cluster (and so publishes on sharded channels). */
export function isCluster(redis: RedisClient): redis is Cluster {
  return redis instanceof Cluster;
}

/** Publishes `payload` on `channel`; resolves with how many subscribers received it. */
export function publish(redis: RedisClient, channel: string, payload: string): Promise<number> {
  // ioredis types SPUBLISH's reply loosely; Redis answers the receivers' count, as for PUBLISH.
  return isCluster(redis) ? (redis.spublish(channel, payload) as Promise<number>) : redis.publish(channel, payload);
}

/**
 * How many connections subscribe `channel` (a gateway's reply channel says whether it lives).
 * On a cluster a sharded subscription is counted only by `PUBSUB SHARDNUMSUB`, and only by the
 * master of the channel's slot (any other node answers 0; plain `NUMSUB` always does): every
 * master is asked and the answers summed, which also holds while a slot moves.
 */
export async function subscriberCount(redis: RedisClient, channel: string): Promise<number> {
  const count = (reply: unknown) => Number((reply as [string, number])[1]);
  if (!isCluster(redis)) return count(await redis.pubsub("NUMSUB", channel));
  const counts = await Promise.all(redis.nodes("master").map(async (node) => count(await node.pubsub("SHARDNUMSUB", channel))));
  return counts.reduce((sum, n) => sum + n, 0);
}

/**
 * Adds a publish of `payload` on `channel` to transaction `tx` opened on `redis`. On a cluster it
 * is an `SPUBLISH`, whose channel counts as a key: it must share the transaction's hash slot.
 */
export function publishIn(tx: ChainableCommander, redis: RedisClient, channel: string, payload: string): ChainableCommander {
  return isCluster(redis) ? tx.spublish(channel, payload) : tx.publish(channel, payload);
}

/** Subscribes `channels` on a subscriber connection. */
export async function subscribe(sub: RedisClient, ...channels: string[]): Promise<void> {
  if (channels.length === 0) return;
  if (isCluster(sub)) {
    // A sharded SSUBSCRIBE takes channels of one slot only: one command per channel.
    await Promise.all(channels.map((channel) => sub.ssubscribe(channel)));
  } else {
    await sub.subscribe(...channels);
  }
}

/** Unsubscribes `channels` on a subscriber connection. */
export async function unsubscribe(sub: RedisClient, ...channels: string[]): Promise<void> {
  if (channels.length === 0) return;
  if (isCluster(sub)) await Promise.all(channels.map((channel) => sub.sunsubscribe(channel)));
  else await sub.unsubscribe(...channels);
}

/** Calls `handler` for every message the subscriber connection receives, sharded or not. */
export function onMessage(sub: RedisClient, handler: (channel: string, payload: string) => void): void {
  sub.on(isCluster(sub) ? "smessage" : "message", handler);
}
