/**
 * What a gateway does with its own channel (`<p>:to-gateway:<id>`, docs/redis.md): a node's
 * `fanout` (one event for several of the sessions it holds) is written to each of them in order,
 * and the sessions it could not be written to are named back to the node in one `undelivered`,
 * so that the node keeps the event for them (docs/architecture.md#fan-out-by-gateway). A
 * `barrier` is answered `flushed` on the instance's channel, after every `undelivered` before it.
 * The event is never parsed here: it is cut out of the fanout and passed on as text.
 *
 * Fanouts are put back in their node's order first (fanout-order.ts), and a gap in it is told to
 * the node (`gap`). A `rewind` (a node kept events for sessions whose connections never closed:
 * a failover) makes those sessions resume on their open connections.
 */
import type { RedisClient } from "../src/redis-connection.js";
import type { Logger } from "pino";
import type { Keys } from "../src/keys.js";
import { EVENT_KEY, FANOUT_PREFIX, type ToInstance } from "../src/protocol/bus-messages.js";
import { decodeToGateway, splitEvent } from "../src/protocol/bus-parse.js";
import { scanFanout } from "../src/protocol/fanout-scan.js";
import { publish } from "../src/pubsub.js";
import { FanoutOrder } from "./fanout-order.js";
import { beginShared, endShared } from "./shared-frame.js";

/** A session a fanout may be written to. */
export interface FanoutSession {
  /** Its id now (a resume changes it), and the channel it is kept under. */
  readonly id: string;
  readonly channel: string;
  /** True while the session can take a fanout's event (its gate orders it behind a replay). */
  takesFanout(): boolean;
  /** One event (JSON text), as if it came on the session's channel. */
  onBus(payload: string): void;
  /** Fanout `seq` of `instance` (run `run`) for the session: its event, JSON text. */
  onFanout(instance: string, run: string | undefined, seq: number, payload: string): void;
  /** Asks the session's instances again for what they kept for it (session-resync.ts). */
  resync(): void;
}

export interface FanoutHost {
  /** The session this gateway holds under id `session`, if any. */
  session(session: string): FanoutSession | undefined;
  /** Publishes on an instance's channel (same connection, so in order); resolves with the receivers (0 on failure). */
  toInstance(instance: string, payload: string): Promise<number>;
  /** A message without the shape of one: logged and counted, then dropped. */
  bad(problem: string): void;
  /** Each instance's fanouts in their node's order. */
  readonly order: FanoutOrder;
  /** A node kept events for session `id`, whose connection is open: it resumes on it. */
  resync(id: string): void;
}

/** A gateway's host for its channel: its sessions (keyed by session channel) and its command connection. */
export function fanoutHost(g: {
  redis: RedisClient;
  keys: Keys;
  gatewayId: string;
  sessions: ReadonlyMap<string, FanoutSession>;
  logger: Logger;
  bad(problem: string): void;
  /** Counts a gap in a node's fanouts. */
  gap(): void;
  /** Counts a session resumed on its open connection (a `rewind`). */
  resynced(): void;
}): FanoutHost {
  const order = new FanoutOrder((instance, run, after, through) => {
    g.gap();
    g.logger.warn({ instance, after, through }, "fanouts lost in a Redis failover; their node tells the sessions dropped");
    const gap: ToInstance = { type: "gap", gateway: g.gatewayId, run, after, through };
    void publish(g.redis, g.keys.instanceChannel(instance), JSON.stringify(gap)).catch((err: unknown) => g.logger.warn({ err, instance }, "could not tell a node of lost fanouts"));
  });
  // Sessions by id: building each one's channel name for every event costs more than the rest of
  // the lookup. An entry is used only while it is still that session's, under its channel.
  const byId = new Map<string, FanoutSession>();
  const session = (id: string): FanoutSession | undefined => {
    const known = byId.get(id);
    if (known !== undefined && known.id === id && g.sessions.get(known.channel) === known) return known;
    const found = g.sessions.get(g.keys.sessionChannel(id));
    if (found === undefined) byId.delete(id);
    else {
      // Entries of ended sessions are dropped all at once, now and then.
      if (byId.size > 2 * g.sessions.size + 64) byId.clear();
      byId.set(id, found);
    }
    return found;
  };
  return {
    order,
    session,
    resync: (id) => {
      const session = g.sessions.get(g.keys.sessionChannel(id));
      if (!session) return;
      g.resynced();
      session.resync();
    },
    toInstance: (instance, payload) =>
      publish(g.redis, g.keys.instanceChannel(instance), payload).catch((err: unknown) => {
        g.logger.warn({ err, instance }, "could not answer a node's fanout");
        return 0;
      }),
    bad: (problem) => g.bad(problem),
  };
}

/** Handles one message of the gateway's channel. */
export function handleGatewayMessage(host: FanoutHost, payload: string): void {
  // The commonest message, in the form nodes write it, read without parsing (fanout-scan.ts).
  const fanout = scanFanout(payload);
  if (fanout !== null) {
    const { instance, run, seq, prev, sessions, event } = fanout;
    return host.order.take(instance, run, seq, prev, () => deliverFanout(host, instance, run, seq, sessions, event));
  }
  const parts = payload.startsWith(FANOUT_PREFIX) ? splitEvent(payload) : null;
  const decoded = decodeToGateway(parts ? parts.head : payload);
  if (!decoded.ok) return host.bad(decoded.problem);
  const message = decoded.message;
  if (message.type === "barrier") {
    const flushed: ToInstance = { type: "flushed", client: message.client, id: message.id };
    return void host.toInstance(message.instance, JSON.stringify(flushed));
  }
  if (message.type === "skip") return host.order.take(message.instance, message.run, message.seq, message.prev, () => {});
  if (message.type === "rewind") {
    for (const id of message.sessions) host.resync(id);
    return;
  }
  if (!parts) return host.bad("gateway channel fanout: no event");
  const { instance, seq, run, prev } = message;
  host.order.take(instance, run, seq, prev, () => deliverFanout(host, instance, run, seq, message.sessions, parts.event));
}

/** Writes a fanout's event to each of its sessions; those it cannot take are named back to the node. */
function deliverFanout(host: FanoutHost, instance: string, run: string | undefined, seq: number, sessions: readonly string[], event: string): void {
  const missed: string[] = [];
  if (sessions.length > 1) beginShared(event);
  try {
    for (const id of sessions) {
      const session = host.session(id);
      if (session?.takesFanout()) session.onFanout(instance, run, seq, event);
      else missed.push(id);
    }
  } finally {
    endShared();
  }
  if (missed.length === 0) return;
  const head = JSON.stringify({ type: "undelivered", seq, sessions: missed } satisfies Omit<Extract<ToInstance, { type: "undelivered" }>, "event">);
  void host.toInstance(instance, `${head.slice(0, -1)}${EVENT_KEY}${event}}`).then((receivers) => {
    if (receivers > 0) return;
    // No node heard it (its subscriber is down: a failover), so none keeps the event: the
    // sessions hear it was lost, in order with what they get next, rather than nothing.
    const dropped = JSON.stringify({ type: "dropped", instance, count: 1 });
    for (const id of missed) host.session(id)?.onBus(dropped);
  });
}
