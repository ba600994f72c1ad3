/** Reading a registry set and the hash each member names, in one pipeline. */
import type { RedisClient } from "../redis-connection.js";

/** One member of the set and its hash: `{}` when the hash is gone, null when it could not be read. */
export interface MemberHash {
  id: string;
  hash: Record<string, string> | null;
}

/** The members of `setKey`, each with the hash `hashKey(id)` (one round trip for all of them). */
export async function readSetHashes(redis: RedisClient, setKey: string, hashKey: (id: string) => string): Promise<MemberHash[]> {
  const ids = await redis.smembers(setKey);
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hgetall(hashKey(id));
  const results = (await pipeline.exec()) ?? [];
  return ids.map((id, i) => {
    const [err, hash] = results[i] ?? [new Error("no reply"), null];
    return { id, hash: err ? null : (hash as Record<string, string>) };
  });
}
