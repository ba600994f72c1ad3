/**
 * The resume handshake again, on a connection that never closed: after a node's fanout to this
 * gateway reached nobody while its subscriber was reconnecting (a Redis failover,
 * docs/resume.md#after-a-redis-failover).
 *
 * The node then keeps the client's events "until it resumes", as for a dead gateway. Its
 * WebSocket never closed, so it would never resume: its events would stop silently. So the node
 * asks the gateway (`rewind`, nodes/gateway-links.ts) until one hears it, and the gateway resumes
 * each session named itself: it asks every joined instance for what it kept
 * (`resume`, as a resuming gateway does), and the replay gate puts the kept events, with a
 * `dropped` for what could not be kept, before the live ones. Nothing is claimed in the session
 * store and no socket closes; the client sees only the events (and perhaps a `dropped`).
 */
import type { ToInstance } from "../src/protocol/bus-messages.js";
import { ReplayGate } from "./replay-gate.js";
import { resumeMessage, toInstance, type ResumingSession } from "./session-resume.js";

/**
 * A node's subscriber may come back later than the gateway's: a `resume` that reached nobody is
 * asked again, every RETRY_MS, for at most RETRY_FOR_MS (under the gate's 5 s wait for replays,
 * past which its live events go out unordered).
 */
const RETRY_MS = 200;
const RETRY_FOR_MS = 4_000;
/** How long an `ack` is published again while no node hears it. */
const ACK_FOR_MS = 10_000;

/** Resumes `s`'s joined instances on its own connection; resolves once every `resume` was published (or given up). */
export async function resyncSession(s: ResumingSession): Promise<void> {
  const { ctx, logger } = s;
  const joined = [...s.membership.joined];
  if (joined.length === 0) return;
  const gate = new ReplayGate(
    joined,
    {
      send: (text) => s.deliver(text),
      notMember: (instance) => s.notMember(instance),
      // A lost ack would leave the events kept, and the next resync would replay them twice.
      ack: (instance, through) => void untilHeard(s, instance, { type: "ack", client: s.id(), through }, ACK_FOR_MS),
      alive: () => s.alive(),
      // Nothing was claimed in the store: nothing to mark over.
      finished: () => {},
      liveSeq: (instance, run) => s.liveSeq(instance, run),
      replayedThrough: (instance, run, seq) => s.replayedThrough(instance, run, seq),
    },
    logger,
  );
  s.setGate(gate);
  gate.open();
  const resume = resumeMessage(s);
  let pending = joined;
  const deadline = Date.now() + RETRY_FOR_MS;
  for (;;) {
    const asked = await Promise.all(pending.map((instance) => toInstance(ctx, instance, resume).catch(() => 0)));
    pending = pending.filter((_, i) => asked[i] === 0);
    if (pending.length === 0 || s.closed() || Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
  // An instance that ended meanwhile says so (`closed`, or `lost` from its node's reaper).
  if (pending.length > 0) logger.warn({ instances: pending }, "no node listened for a resynced session's instances");
  logger.info({ session: s.id(), instances: joined.length }, "session resumed on its open connection after a node kept its events");
}

/** Publishes `message` on the instance's channel until a node hears it, or `ms` passed. */
async function untilHeard(s: ResumingSession, instance: string, message: ToInstance, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while ((await toInstance(s.ctx, instance, message).catch(() => 0)) === 0 && Date.now() < deadline && !s.closed()) {
    await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
  }
}
