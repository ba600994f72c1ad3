/**
 * Taking a session back on a new connection (docs/protocol.md "resume", docs/resume.md).
 *
 * Order is the point. While no gateway held the session, each node kept the events that reached
 * nobody; the gateway that held it last kept those that arrived after its client left (the
 * "tail"). The resuming gateway subscribes the session channel, then asks every joined instance
 * for what it kept. Its client then gets: `resumed`, the tail, and per instance the kept events
 * followed by the live ones that arrived meanwhile (held back until that instance's replay:
 * replay-gate.ts).
 *
 * One resume at a time: the claim marks the session as being resumed until every replay went
 * out, and another resume meanwhile is refused (`unavailable`) rather than taking the session
 * from under it. Rights are checked again: a join the new connection's ticket could not make
 * now ends (the service hears `leave` `kicked`, the client `closed` `kicked`).
 */
import type { RedisClient } from "../src/redis-connection.js";
import type { Logger } from "pino";
import { ServmanError } from "../src/errors.js";
import type { Keys } from "../src/keys.js";
import type { ToInstance, ToSession } from "../src/protocol/bus-messages.js";
import { idOf, type ClosedReason, type ResumeRequest, type ServerFrame } from "../src/protocol/client-messages.js";
import { isSessionId, type SessionStore, type StoredSession } from "../src/registry/session-store.js";
import { ReplayGate } from "./replay-gate.js";
import { ResumeAnswers } from "./resume-answers.js";
import type { Identity } from "./gateway-auth.js";
import { SessionAccess } from "./session-access.js";
import type { SessionContext } from "./session-context.js";
import type { SessionMembership } from "./session-membership.js";
import { publish as publishOn, subscriberCount } from "../src/pubsub.js";

/** How long a resume waits for a gateway that still holds the session to let it go. */
const TAKEOVER_WAIT_MS = 3_000;
const TAKEOVER_POLL_MS = 50;
/**
 * How long a claimed session counts as being resumed (other resumes refused) if its gateway never
 * says the resume is over: past the replays' wait (5 s) with room to spare.
 */
const RESUMING_MS = 10_000;

export interface ClaimContext {
  readonly gatewayId: string;
  readonly redis: RedisClient;
  readonly keys: Keys;
  readonly store: SessionStore;
}

/**
 * Takes session `id` for this gateway. A gateway still holding it is asked to let go (its
 * connection is likely dead but not yet noticed); one whose Redis connections are gone is dead,
 * and the session is taken without waiting for its liveness key to expire.
 */
async function claimSession(ctx: ClaimContext, id: string, token: string, user: string | null, logger: Logger): Promise<StoredSession> {
  if (!isSessionId(id)) throw new ServmanError("bad_request", "field session: not a session id");
  const deadline = Date.now() + TAKEOVER_WAIT_MS;
  /** The holder found dead: its hold (and only its) is taken. */
  let dead: string | null = null;
  let asked = 0;
  for (;;) {
    const result = await ctx.store.claim(id, token, ctx.gatewayId, user, dead, RESUMING_MS);
    switch (result.kind) {
      case "claimed":
        return result.session;
      case "resuming":
        // Taking it now would take it from under a replay; a dead resumer is not waited for.
        if (result.gateway !== dead && !(await holderAlive(ctx, result.gateway))) {
          logger.info({ session: id, holder: result.gateway }, "the gateway resuming the session is gone; taking it");
          dead = result.gateway;
          continue;
        }
        throw new ServmanError("unavailable", `session ${id} is being resumed by another connection; try again`);
      case "gone":
        throw new ServmanError("timeout", `session ${id} cannot be resumed: it ended or its resume window passed; start a new session`);
      case "refused":
        throw new ServmanError("forbidden", "this resume token (or ticket user) does not match the session");
      case "busy": {
        if (Date.now() > deadline) throw new ServmanError("unavailable", `session ${id} is still held by gateway ${result.gateway}; try again`);
        if (result.gateway !== "" && result.gateway !== dead) {
          if (!(await holderAlive(ctx, result.gateway))) {
            logger.info({ session: id, holder: result.gateway }, "the gateway holding the session is gone; taking it");
            dead = result.gateway;
            continue;
          }
        }
        // Asked again now and then: a holder that was still subscribing may have missed it.
        if (asked++ % 10 === 0) {
          const takeover: ToSession = { type: "takeover", gateway: ctx.gatewayId };
          await publishOn(ctx.redis, ctx.keys.sessionChannel(id), JSON.stringify(takeover));
        }
        await new Promise((resolve) => setTimeout(resolve, TAKEOVER_POLL_MS));
      }
    }
  }
}

/** False when the gateway's Redis connections are gone (it died): nobody listens on its reply channel. */
async function holderAlive(ctx: ClaimContext, gateway: string): Promise<boolean> {
  return (await subscriberCount(ctx.redis, ctx.keys.replyChannel(gateway))) > 0;
}

/**
 * Which of a resumed session's joins and owned instances the resuming connection may keep: a
 * join it could make now (ticket scope, allow/deny, read from the registry as a join does), and
 * ownership the registry still gives it. An instance with no record is left to the replay (which
 * finds it gone). Exported for tests.
 */
async function recheckRights(ctx: Pick<SessionContext, "requester">, access: SessionAccess, stored: Pick<StoredSession, "joined" | "closeOnLeave">): Promise<{ kicked: string[]; disowned: string[] }> {
  const instances = [...new Set([...stored.joined, ...stored.closeOnLeave])];
  const records = new Map(await Promise.all(instances.map(async (i) => [i, await ctx.requester.instances.get(i)] as const)));
  const kicked = stored.joined.filter((i) => {
    const record = records.get(i) ?? null;
    return !access.inScope(i, record) || (record !== null && !access.mayJoin(record));
  });
  const disowned = stored.closeOnLeave.filter((i) => {
    const record = records.get(i) ?? null;
    return record !== null && !access.owns(record);
  });
  return { kicked, disowned };
}

/** What a resume needs from its connection (gateway/session.ts). */
export interface ResumingSession {
  readonly ctx: SessionContext;
  readonly membership: SessionMembership;
  /** The resuming connection's identity (its ticket's claims). */
  readonly identity: Identity;
  readonly user: string | null;
  readonly logger: Logger;
  id(): string;
  channel(): string;
  /** Takes the stored session's id and token; returns the channel the connection listened on. */
  become(id: string, token: string): string;
  /** Installs the gate every bus event passes first. */
  setGate(gate: ReplayGate): void;
  closed(): boolean;
  /** True while the client's socket can take frames. */
  alive(): boolean;
  send(frame: ServerFrame): void;
  /** One bus event (JSON text) for the client, handled as if it came from the bus. */
  deliver(payload: string): void;
  /** An instance no longer counts the session as a member. */
  notMember(instance: string): void;
  /** The resume failed after taking the session: the connection closes (1011), the session detaches. */
  abort(): void;
  /** The highest `seq` of `instance`'s run `run` this connection passed to its client live (0: none). */
  liveSeq(instance: string, run: string): number;
  /** A replay passed events of `run` up to `seq` to the client. */
  replayedThrough(instance: string, run: string, seq: number): void;
  /** The cluster has the client's numbered sends up to `acked` (resume-answers.ts). */
  resumedAt(acked: number): void;
}

/** Publishes `message` on the instance's channel; resolves with the nodes that heard it. */
export function toInstance(ctx: SessionContext, instance: string, message: ToInstance): Promise<number> {
  return publishOn(ctx.redis, ctx.keys.instanceChannel(instance), JSON.stringify(message));
}

/** The `resume` that asks an instance's node for what it kept for `s`, on `s`'s channel. */
export function resumeMessage(s: ResumingSession): ToInstance {
  return { type: "resume", client: s.id(), reply: s.channel(), ...(s.ctx.routeAs !== undefined ? { gateway: s.ctx.routeAs } : {}), answer: true };
}

/** The instance a bus event (JSON text) is about, if any. */
function instanceOf(payload: string): unknown {
  try {
    return (JSON.parse(payload) as { instance?: unknown }).instance;
  } catch {
    return undefined;
  }
}

/** Takes an older session back on this connection; the `resumed` reply carries `id`. */
export async function resumeSession(s: ResumingSession, req: ResumeRequest): Promise<void> {
  const { ctx, logger } = s;
  const stored = await claimSession(ctx, req.session, req.resume, s.user, logger);
  // Checked before the connection changes: a failure here leaves it as it was.
  let rights: { kicked: string[]; disowned: string[] };
  try {
    rights = await recheckRights(ctx, new SessionAccess(s.identity, () => stored.id), stored);
  } catch (err) {
    await putBack(s, stored);
    throw err;
  }
  // The connection closed meanwhile: nobody takes the session, it waits for another resume.
  if (s.closed()) return putBack(s, stored);
  try {
    await takeBack(s, req, stored, rights);
  } catch (err) {
    // Half taken back, the connection could only lose events: it closes, and the session waits,
    // detached, for the client to resume it again (nothing kept on the nodes was acknowledged).
    logger.warn({ err }, "a resume failed after taking the session; closing the connection");
    s.abort();
    throw err;
  }
}

/** A session claimed but not taken: detached again, with its tail, for the next resume. */
async function putBack(s: ResumingSession, stored: StoredSession): Promise<void> {
  const { ctx, logger } = s;
  await ctx.store.detach(stored.id, ctx.gatewayId, Date.now() + ctx.resumeWindowMs, stored.tail).catch((err: unknown) => logger.warn({ err }, "could not put back a session whose resume failed"));
}

/** Makes this connection the session's (no await before the rebind: the gateway finds it under its channel). */
async function takeBack(s: ResumingSession, req: ResumeRequest, stored: StoredSession, rights: { kicked: string[]; disowned: string[] }): Promise<void> {
  const { ctx, membership, logger } = s;
  const { kicked, disowned } = rights;
  const oldChannel = s.become(stored.id, req.resume);
  membership.adopt(stored);
  for (const instance of disowned) membership.forgetCloseOnLeave(instance);
  for (const instance of kicked) membership.kick(instance);
  if (kicked.length > 0) logger.info({ kicked }, "resumed session: joins its new ticket does not allow were ended");
  const joined = [...membership.joined];
  const answers = new ResumeAnswers(joined);
  const gate = new ReplayGate(
    joined,
    {
      send: (text) => s.deliver(text),
      notMember: (instance) => s.notMember(instance),
      // Acks are cumulative: one lost keeps the events until the next ack, or the session's end.
      ack: (instance, through) => void toInstance(ctx, instance, { type: "ack", client: s.id(), through }).catch(() => {}),
      alive: () => s.alive(),
      finished: () => void ctx.store.resumed(s.id(), ctx.gatewayId).catch((err: unknown) => logger.warn({ err }, "could not mark a resume as over")),
      liveSeq: (instance, run) => s.liveSeq(instance, run),
      replayedThrough: (instance, run, seq) => s.replayedThrough(instance, run, seq),
      answered: (instance, received) => answers.answered(instance, received),
    },
    logger,
  );
  s.setGate(gate);
  if (s.closed()) return;
  await ctx.rebind(oldChannel, s.channel());
  if (s.closed()) return;
  // Each instance replays what it kept to this (now subscribed) channel; none listening: it is gone.
  const asked = await Promise.all(joined.map((instance) => toInstance(ctx, instance, resumeMessage(s)).catch(() => -1)));
  const gone = joined.filter((_, i) => asked[i] === 0);
  for (const instance of gone) {
    gate.forget(instance);
    membership.forgetJoined(instance);
  }
  for (const [i, instance] of joined.entries()) if (asked[i] <= 0) answers.forget(instance);
  // The nodes know which of the client's sends they received, whichever gateway relayed them.
  const acked = await answers.wait();
  s.resumedAt(acked);
  logger.info({ joined: membership.joined.size, gone: gone.length, kicked: kicked.length, tail: stored.tail.length, acked }, "session resumed");
  s.send({ type: "resumed", ...idOf(req.id), session: s.id(), instances: [...membership.joined], acked });
  // What the old gateway kept of an instance the new ticket may not see is not shown to it.
  const ended = new Set(kicked);
  for (const payload of stored.tail) if (ended.size === 0 || !ended.has(instanceOf(payload) as string)) s.deliver(payload);
  for (const instance of gone) {
    const reason = ((await ctx.postMortem(instance).catch(() => null))?.reason ?? "lost") as ClosedReason;
    s.send({ type: "closed", instance, reason });
  }
  for (const instance of kicked) s.send({ type: "closed", instance, reason: "kicked" });
  gate.open();
}
