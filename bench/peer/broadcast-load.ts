/**
 * The broadcast workload: one client of a room sends `bcast` and the room sends it to every
 * client in it. A broadcast is done once every member received it; the sender keeps `window`
 * broadcasts not yet done, so the rate is what the server (and the clients) can deliver.
 */
import { sleep } from "../lib/concurrency.js";
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
export async function broadcastLoad(
  members: readonly RoomClient[],
  window: number,
  warmupMs: number,
  durationMs: number,
  hooks: { onMeasureStart?(): void; onMeasureEnd?(): void } = {},
  drainMs = 10_000,
): Promise<BroadcastResult> {
  /** Per broadcast not done yet: how many members have not received it. */
  const missing = new Map<number, number>();
  let next = 0;
  let sending = true;
  let measuring = false;
  let counted = 0;
  let drained: (() => void) | null = null;
  const sendOne = () => {
    missing.set(next, members.length);
    members[0].broadcast({ seq: next++ });
  };
  for (const member of members) {
    member.onBroadcast(({ seq }) => {
      if (measuring) counted++;
      const left = (missing.get(seq) ?? 0) - 1;
      if (left > 0) {
        missing.set(seq, left);
        return;
      }
      missing.delete(seq);
      if (sending) sendOne();
      else if (missing.size === 0) drained?.();
    });
  }

  for (let w = 0; w < window; w++) sendOne();
  await sleep(warmupMs);
  hooks.onMeasureStart?.();
  measuring = true;
  const start = performance.now();
  await sleep(durationMs);
  measuring = false;
  sending = false;
  const measuredMs = performance.now() - start;
  hooks.onMeasureEnd?.();
  if (missing.size > 0) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, drainMs);
      drained = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
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
