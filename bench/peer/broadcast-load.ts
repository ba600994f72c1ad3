/**
 * The broadcast workload: one client of a room sends `bcast` and the room sends it to every
 * client in it. A broadcast is done once every member received it; the sender keeps `window`
 * broadcasts not yet done, so the rate is what the server (and the clients) can deliver.
 */
import { LoadPhases, type MeasureHooks } from "../lib/load-phases.js";
import type { RoomClient } from "./room-clients.js";

/** What one broadcast run measured. */
export interface BroadcastResult {
  members: number;
  window: number;
  /** Messages received by members during the measured interval, per second. */
  deliveriesPerSecond: number;
  /** Messages received by members during the measured interval. */
  deliveries: number;
  /** Broadcasts sent in all (warm-up included). */
  broadcasts: number;
  /** Deliveries still missing after the drain. */
  lost: number;
  measuredMs: number;
}

/**
 * Runs broadcasts from `members[0]` to all of `members` (every one in the same room) for
 * `warmupMs + durationMs`; only deliveries in the last `durationMs` are counted, between `hooks`.
 */
export async function broadcastLoad(members: readonly RoomClient[], window: number, warmupMs: number, durationMs: number, hooks: MeasureHooks = {}, drainMs = 10_000): Promise<BroadcastResult> {
  const phases = new LoadPhases();
  /** Per broadcast not done yet: how many members have not received it. */
  const missing = new Map<number, number>();
  let next = 0;
  let counted = 0;
  const sendOne = () => {
    missing.set(next, members.length);
    members[0].broadcast({ seq: next++ });
  };
  for (const member of members) {
    member.onBroadcast(({ seq }) => {
      if (phases.measuring) counted++;
      const left = (missing.get(seq) ?? 0) - 1;
      if (left > 0) {
        missing.set(seq, left);
        return;
      }
      missing.delete(seq);
      if (phases.sending) sendOne();
      else if (missing.size === 0) phases.idle();
    });
  }

  for (let w = 0; w < window; w++) sendOne();
  const measuredMs = await phases.run(warmupMs, durationMs, hooks, () => missing.size > 0, drainMs);
  for (const member of members) member.onBroadcast(null);
  return {
    members: members.length,
    window,
    deliveriesPerSecond: Math.round((counted * 1000) / measuredMs),
    deliveries: counted,
    broadcasts: next,
    lost: [...missing.values()].reduce((sum, n) => sum + n, 0),
    measuredMs: Math.round(measuredMs),
  };
}
