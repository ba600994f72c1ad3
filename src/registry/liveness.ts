/**
 * Finding processes that died without saying so (SIGKILL, power loss): each keeps a key with a
 * TTL refreshed by its heartbeat and its id in a set. Nodes (NodeRegistry, NodeReaper) and
 * gateways (SessionKeeper) are watched the same way.
 */
import type { RedisClient } from "../redis-connection.js";

/** How often a node or a gateway refreshes its liveness key (a node, its task offers too). */
export const HEARTBEAT_MS = 2_000;
/** How long a liveness key (or a task offer) outlives its last refresh: three heartbeats. */
export const LIVENESS_TTL_MS = 6_000;
/** A death counts only when its key is still missing this long after it was first missed. */
export const DEATH_CONFIRM_MS = 2_000;

/** Ids in `set` whose own key (`keyOf(id)`) no longer exists: they stopped refreshing it. */
export async function membersWithoutKey(redis: RedisClient, set: string, keyOf: (id: string) => string): Promise<string[]> {
  const ids = await redis.smembers(set);
  if (ids.length === 0) return [];
  const p = redis.pipeline();
  for (const id of ids) p.exists(keyOf(id));
  const results = (await p.exec()) ?? [];
  return ids.filter((_, i) => results[i]?.[0] === null && results[i]?.[1] === 0);
}

/**
 * A death counts only once its key has been missing for `confirmMs`, as seen by this process on
 * later sweeps: after Redis itself paused, keys expire by Redis's clock while the heartbeats are
 * still queued; those land within a second or two.
 */
export class DeathConfirmation {
  /** Ids seen without their key, and when (this process's clock). */
  private readonly suspects = new Map<string, number>();

  constructor(private readonly confirmMs: number) {}

  /** Of the ids missing now, those missing for at least `confirmMs`. They stay suspects until `forget`. */
  confirmed(missing: readonly string[], now = Date.now()): string[] {
    const current = new Set(missing);
    for (const id of this.suspects.keys()) if (!current.has(id)) this.suspects.delete(id);
    const dead: string[] = [];
    for (const id of current) {
      const since = this.suspects.get(id);
      if (since === undefined) this.suspects.set(id, now);
      else if (now - since >= this.confirmMs) dead.push(id);
    }
    return dead;
  }

  /** The death was dealt with. */
  forget(id: string): void {
    this.suspects.delete(id);
  }
}
