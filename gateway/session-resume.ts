/**
 * Taking a session back on a new connection (SPEC §3 `resume`; docs/protocol.md "Resume").
 *
 * Order is the point. While no gateway held the session, each node kept the events that reached
 * nobody; the gateway that held it last kept those that arrived after its client left (the
 * "tail"). The resuming gateway subscribes the session channel, then asks every joined instance
 * for what it kept. Its client then gets: `resumed`, the tail, and per instance the kept events
 * followed by the live ones that arrived meanwhile (held back until that instance's replay).
 */
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import { ServmanError } from "../src/errors.js";
import type { Keys } from "../src/keys.js";
import type { ToRequester } from "../src/protocol/bus-messages.js";
import { isSessionId, type SessionStore, type StoredSession } from "../src/registry/session-store.js";

/** How long a resume waits for a gateway that still holds the session to let it go. */
const TAKEOVER_WAIT_MS = 3_000;
const TAKEOVER_POLL_MS = 50;
/** How long live events of an instance wait for its replay before they go out anyway. */
const REPLAY_WAIT_MS = 5_000;

export interface ClaimContext {
  readonly gatewayId: string;
  readonly redis: Redis;
  readonly keys: Keys;
  readonly store: SessionStore;
}

/**
 * Takes session `id` for this gateway. A gateway still holding it is asked to let go (its
 * connection is likely dead but not yet noticed); one whose Redis connections are gone is dead,
 * and the session is taken without waiting for its liveness key to expire.
 */
export async function claimSession(ctx: ClaimContext, id: string, token: string, user: string | null, logger: Logger): Promise<StoredSession> {
  if (!isSessionId(id)) throw new ServmanError("bad_request", "field session: not a session id");
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  let force = false;
  let asked = 0;
  for (;;) {
    const result = await ctx.store.claim(id, token, ctx.gatewayId, user, force);
    switch (result.kind) {
      case "claimed":
        return result.session;
      case "gone":
        throw new ServmanError("timeout", `session ${id} cannot be resumed: it ended or its resume window passed; start a new session`);
      case "refused":
        throw new ServmanError("forbidden", "this resume token (or ticket user) does not match the session");
      case "busy": {
        if (Date.now() > deadline) throw new ServmanError("unavailable", `session ${id} is still held by gateway ${result.gateway}; try again`);
        if (result.gateway !== "" && !force) {
          const [, subscribers] = (await ctx.redis.pubsub("NUMSUB", ctx.keys.replyChannel(result.gateway))) as [string, number];
          if (Number(subscribers) === 0) {
            logger.info({ session: id, holder: result.gateway }, "the gateway holding the session is gone; taking it");
            force = true;
            continue;
          }
        }
        // Asked again now and then: a holder that was still subscribing may have missed it.
        if (asked++ % 10 === 0) {
          const takeover: ToRequester = { type: "takeover", gateway: ctx.gatewayId };
          await ctx.redis.publish(ctx.keys.sessionChannel(id), JSON.stringify(takeover));
        }
        await new Promise((resolve) => setTimeout(resolve, TAKEOVER_POLL_MS));
      }
    }
  }
}

type Replay = Extract<ToRequester, { type: "replay" }>;

/**
 * Holds a resumed session's live events per instance until that instance's replay has gone out.
 * `intercept` returns true for a payload it took (held, or a replay it handled).
 */
export class ReplayGate {
  /** Instance -> live events (JSON text) waiting for its replay. */
  private readonly held = new Map<string, string[]>();
  /** Replays that came before `open`. */
  private early: Replay[] | null = [];
  private timer: NodeJS.Timeout | undefined;

  constructor(
    instances: Iterable<string>,
    private readonly out: {
      send(text: string): void;
      /** An instance no longer counts the client as a member (it was kicked or restarted without it). */
      notMember(instance: string): void;
    },
    private readonly logger: Logger,
  ) {
    for (const instance of instances) this.held.set(instance, []);
  }

  get done(): boolean {
    return this.held.size === 0 && this.early === null;
  }

  /** Stops waiting for `instance` (it is gone). */
  forget(instance: string): void {
    this.held.delete(instance);
  }

  /** Replays may go out from now on (the `resumed` reply and the tail have been sent). */
  open(): void {
    const early = this.early ?? [];
    this.early = null;
    for (const replay of early) this.release(replay);
    if (this.held.size > 0) {
      this.timer = setTimeout(() => {
        this.logger.warn({ instances: [...this.held.keys()] }, "no replay from some instances of a resumed session; sending their live events");
        for (const instance of [...this.held.keys()]) this.flush(instance);
      }, REPLAY_WAIT_MS);
    }
  }

  intercept(payload: string): boolean {
    let event: ToRequester;
    try {
      event = JSON.parse(payload) as ToRequester;
    } catch {
      return false;
    }
    if (event.type === "replay") {
      if (this.early) this.early.push(event);
      else this.release(event);
      return true;
    }
    const instance = (event as { instance?: unknown }).instance;
    const held = typeof instance === "string" ? this.held.get(instance) : undefined;
    if (!held) return false;
    held.push(payload);
    return true;
  }

  private release(replay: Replay): void {
    for (const event of replay.events) this.out.send(JSON.stringify(event));
    if (replay.dropped > 0) this.out.send(JSON.stringify({ type: "dropped", instance: replay.instance, count: replay.dropped }));
    if (!replay.member && !replay.events.some((e) => e.type === "closed")) this.out.notMember(replay.instance);
    this.flush(replay.instance);
  }

  private flush(instance: string): void {
    const held = this.held.get(instance);
    this.held.delete(instance);
    for (const payload of held ?? []) this.out.send(payload);
    if (this.held.size === 0) this.close();
  }

  /** Idempotent. */
  close(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
