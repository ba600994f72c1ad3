/**
 * A private redis-server per benchmark, on a free port of 127.0.0.1 (never the shared :6379):
 * the test suite's helper, reused as it is.
 */
import type { Redis } from "ioredis";
export { startRedis, type TestRedis as BenchRedis } from "../../test/helpers/redis-server.js";

/** The redis-server's `used_memory` in bytes (what its data, subscriptions included, costs). */
export async function redisUsedMemory(client: Redis): Promise<number> {
  const info = await client.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

/** The number of keys in the private database (0 once a run cleaned up after itself). */
export function redisKeyCount(client: Redis): Promise<number> {
  return client.dbsize();
}
