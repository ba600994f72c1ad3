/**
 * Resumable client sessions in Redis (docs/redis.md, docs/protocol.md "Resume"): which gateway
 * holds a session, the digest of its resume token, the instances it joined and the ones it must
 * stop when it ends. A session whose connection dropped is *detached*: no gateway holds it, and a
 * sorted set says when its resume window ends. Every transition is one Lua script
 * (`lua/session-*.lua`), so a session is taken back by exactly one connection, or ended by
 * exactly one sweeper.
 */
import { createHash } from "node:crypto";
import type { RedisClient } from "../redis-connection.js";
import type { Keys } from "../keys.js";
import { runScript } from "./lua-scripts.js";

/** Session ids are the gateway's nanoid(21): checked before one reaches a key. */
const SESSION_ID = /^[A-Za-z0-9_-]{21}$/;

/** True when `id` can be a session id. */
export function isSessionId(id: unknown): id is string {
  return typeof id === "string" && SESSION_ID.test(id);
}

/** What a stored session says. */
export interface StoredSession {
  id: string;
  /** User id (ticket `sub`), or null in open mode. */
  user: string | null;
  /** Instances the session is joined to. */
  joined: string[];
  /** Instances to stop when the session ends (launched with `closeOnOwnerLeave`). */
  closeOnLeave: string[];
  /** Events the last gateway received after its client had gone (JSON texts, in order). */
  tail: string[];
}

/** How an attempt to take a session back went. */
export type ClaimResult =
  | { kind: "claimed"; session: StoredSession }
  /** No such session, or its resume window has passed. */
  | { kind: "gone" }
  /** The token or the user does not match. */
  | { kind: "refused" }
  /** A gateway still holds the session (its connection may not have noticed the drop yet). */
  | { kind: "busy"; gateway: string }
  /** Another connection, on `gateway`, is resuming the session right now. */
  | { kind: "resuming"; gateway: string };

const JOINED = "j:";
const OWNED = "o:";

/** The digest kept in place of a resume token: a leaked Redis dump does not leak sessions. */
function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function parseStored(id: string, flat: string[]): StoredSession {
  const session: StoredSession = { id, user: null, joined: [], closeOnLeave: [], tail: [] };
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i];
    const value = flat[i + 1];
    if (field === "user") session.user = value === "" ? null : value;
    else if (field === "tail") session.tail = JSON.parse(value) as string[];
    else if (field.startsWith(JOINED)) session.joined.push(field.slice(JOINED.length));
    else if (field.startsWith(OWNED)) session.closeOnLeave.push(field.slice(OWNED.length));
  }
  return session;
}

export class SessionStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /** Records a session held by `gateway`. */
  async open(id: string, gateway: string, token: string, user: string | null): Promise<void> {
    const p = this.redis.multi();
    p.hset(this.keys.session(id), { gw: gateway, token: tokenDigest(token), user: user ?? "" });
    p.sadd(this.keys.gatewaySessions(gateway), id);
    await p.exec();
  }

  /** Writes a live session back whole (RedisClient lost its data): the gateway holding it knows it all. */
  async restore(session: StoredSession, gateway: string, token: string): Promise<void> {
    const fields: Record<string, string> = { gw: gateway, token: tokenDigest(token), user: session.user ?? "" };
    for (const instance of session.joined) fields[JOINED + instance] = "1";
    for (const instance of session.closeOnLeave) fields[OWNED + instance] = "1";
    const p = this.redis.multi();
    p.hset(this.keys.session(session.id), fields);
    p.sadd(this.keys.gatewaySessions(gateway), session.id);
    await p.exec();
  }

  /** Notes that the session joined (true) or left (false) an instance. */
  async setJoined(id: string, instance: string, joined: boolean): Promise<void> {
    if (joined) await this.redis.hset(this.keys.session(id), JOINED + instance, "1");
    else await this.redis.hdel(this.keys.session(id), JOINED + instance);
  }

  /** Notes that the session must stop (true) or no longer stop (false) an instance when it ends. */
  async setCloseOnLeave(id: string, instance: string, close: boolean): Promise<void> {
    if (close) await this.redis.hset(this.keys.session(id), OWNED + instance, "1");
    else await this.redis.hdel(this.keys.session(id), OWNED + instance);
  }

  /** The holding gateway's client went away: keep the session until `expiresAt`. False if no longer held. */
  async detach(id: string, gateway: string, expiresAt: number, tail: readonly string[]): Promise<boolean> {
    const keys = [this.keys.session(id), this.keys.detachedSessions(), this.keys.gatewaySessions(gateway)];
    return (await runScript(this.redis, "sessionDetach", keys, [id, gateway, String(expiresAt), JSON.stringify(tail)])) === 1;
  }

  /** The session is over (its client closed it): forgets it. False if another gateway holds it. */
  async end(id: string, gateway: string): Promise<boolean> {
    return (await runScript(this.redis, "sessionEnd", [this.keys.session(id), this.keys.gatewaySessions(gateway)], [id, gateway])) === 1;
  }

  /**
   * Takes a session for `gateway`, if `token` is its resume token and `user` its user. A session
   * held elsewhere is `busy` (`resuming` while another connection resumes it, for at most
   * `resumingMs`) unless its holder is `deadHolder` (known dead). A session that moved to another
   * gateway meanwhile is not forced.
   */
  async claim(id: string, token: string, gateway: string, user: string | null, deadHolder: string | null = null, resumingMs = 10_000): Promise<ClaimResult> {
    const digest = tokenDigest(token);
    // The holder's key is needed to leave its set; a race with a move is caught by the script.
    for (let tries = 0; tries < 3; tries++) {
      const holder = await this.redis.hget(this.keys.session(id), "gw");
      if (holder === null) return { kind: "gone" };
      const keys = [this.keys.session(id), this.keys.detachedSessions(), this.keys.gatewaySessions(gateway), this.keys.gatewaySessions(holder === "" ? gateway : holder)];
      const [kind, value] = (await runScript(this.redis, "sessionClaim", keys, [id, digest, gateway, user ?? "", deadHolder ?? "", holder, String(resumingMs)])) as [string, unknown];
      if (kind === "claimed") return { kind, session: parseStored(id, value as string[]) };
      if (kind === "busy" || kind === "resuming") return { kind, gateway: value as string };
      if (kind === "gone" || kind === "refused") return { kind };
    }
    return { kind: "busy", gateway: "" };
  }

  /** The resume that claimed the session on `gateway` is over: another connection may take it now. */
  async resumed(id: string, gateway: string): Promise<void> {
    await runScript(this.redis, "sessionResumed", [this.keys.session(id)], [gateway]);
  }

  /** Sessions whose resume window ended by `now`, each returned (and deleted) for one caller only. */
  async takeExpired(now: number, limit = 100): Promise<StoredSession[]> {
    const ids = await this.redis.zrangebyscore(this.keys.detachedSessions(), "-inf", now, "LIMIT", 0, limit);
    const taken: StoredSession[] = [];
    for (const id of ids) {
      const flat = (await runScript(this.redis, "sessionTakeExpired", [this.keys.session(id), this.keys.detachedSessions()], [id])) as string[] | null;
      if (flat) taken.push(parseStored(id, flat));
    }
    return taken;
  }

  /** Detaches every session a dead gateway held; their windows start now. Returns how many. */
  async orphan(gateway: string, expiresAt: number): Promise<number> {
    const ids = await this.redis.smembers(this.keys.gatewaySessions(gateway));
    let count = 0;
    for (const id of ids) {
      count += Number(await runScript(this.redis, "sessionOrphan", [this.keys.session(id), this.keys.detachedSessions()], [id, gateway, String(expiresAt)]));
    }
    await this.redis.del(this.keys.gatewaySessions(gateway));
    return count;
  }
}
