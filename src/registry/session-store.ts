/**
 * Resumable client sessions in Redis (docs/redis.md, docs/protocol.md "Resume"): which gateway
 * holds a session, the digest of its resume token, the instances it joined and the ones it must
 * stop when it ends. A session whose connection dropped is *detached*: no gateway holds it, and a
 * sorted set says when its resume window ends. Every transition is one Lua script, so a session is
 * taken back by exactly one connection, or ended by exactly one sweeper.
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import type { Keys } from "../keys.js";

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

// Redis's own clock (ms), so that gateways whose clocks differ agree on a resume's deadline.
const NOW_MS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)`;

// KEYS: record, detached set, new gateway's set, holding gateway's set (may be any key when
// the session is detached). ARGV: id, token digest, new gateway, user ("" for none), a holder
// known dead ("" for none: only that one's session is taken from it), expected holder ("" for
// detached), how long the resume may take (ms).
// A claimed session is marked "resuming" (until a deadline) until its gateway says the resume is
// done: meanwhile another claim is refused rather than taking the session mid-replay.
const CLAIM = `
local gw = redis.call('HGET', KEYS[1], 'gw')
if not gw then return {'gone'} end
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] or (redis.call('HGET', KEYS[1], 'user') or '') ~= ARGV[4] then return {'refused'} end
if gw ~= ARGV[6] then return {'moved', gw} end
${NOW_MS}
if gw ~= '' and gw ~= ARGV[5] and tonumber(redis.call('HGET', KEYS[1], 'resuming') or '0') > now then return {'resuming', gw} end
if gw == '' then
  if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return {'gone'} end
elseif gw ~= ARGV[5] then
  return {'busy', gw}
else
  redis.call('SREM', KEYS[4], ARGV[1])
end
redis.call('HSET', KEYS[1], 'gw', ARGV[3], 'resuming', tostring(now + tonumber(ARGV[7])))
redis.call('SADD', KEYS[3], ARGV[1])
local all = redis.call('HGETALL', KEYS[1])
redis.call('HDEL', KEYS[1], 'tail')
return {'claimed', all}`;

// KEYS: record, detached set, gateway's set. ARGV: id, gateway, resume window end, tail JSON.
// Only the holding gateway detaches: one that lost the session to a takeover does nothing.
const DETACH = `
if redis.call('HGET', KEYS[1], 'gw') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'gw', '')
redis.call('HDEL', KEYS[1], 'resuming')
if ARGV[4] ~= '[]' then redis.call('HSET', KEYS[1], 'tail', ARGV[4]) end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SREM', KEYS[3], ARGV[1])
return 1`;

// KEYS: record, gateway's set. ARGV: id, gateway.
const END = `
if redis.call('HGET', KEYS[1], 'gw') ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
return 1`;

// KEYS: record. ARGV: gateway. The resume by this gateway is over: others may take the session.
const RESUMED = `
if redis.call('HGET', KEYS[1], 'gw') ~= ARGV[1] then return 0 end
return redis.call('HDEL', KEYS[1], 'resuming')`;

// KEYS: record, detached set. ARGV: id. Returns the record of a session whose window passed,
// deleting it, for exactly one caller.
const TAKE_EXPIRED = `
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return false end
if redis.call('HGET', KEYS[1], 'gw') ~= '' then return false end
local all = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
return all`;

// KEYS: record, detached set. ARGV: id, dead gateway, resume window end.
const ORPHAN = `
if redis.call('HGET', KEYS[1], 'gw') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'gw', '')
redis.call('HDEL', KEYS[1], 'resuming')
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1`;

/** The digest kept in place of a resume token: a leaked Redis dump does not leak sessions. */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function parseStored(id: string, flat: string[]): StoredSession {
  const session: StoredSession = { id, user: null, joined: [], closeOnLeave: [], tail: [] };
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i]!;
    const value = flat[i + 1]!;
    if (field === "user") session.user = value === "" ? null : value;
    else if (field === "tail") session.tail = JSON.parse(value) as string[];
    else if (field.startsWith(JOINED)) session.joined.push(field.slice(JOINED.length));
    else if (field.startsWith(OWNED)) session.closeOnLeave.push(field.slice(OWNED.length));
  }
  return session;
}

export class SessionStore {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** Records a session held by `gateway`. */
  async open(id: string, gateway: string, token: string, user: string | null): Promise<void> {
    const p = this.redis.multi();
    p.hset(this.keys.session(id), { gw: gateway, token: tokenDigest(token), user: user ?? "" });
    p.sadd(this.keys.gatewaySessions(gateway), id);
    await p.exec();
  }

  /** Writes a live session back whole (Redis lost its data): the gateway holding it knows it all. */
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
    return (await this.redis.eval(DETACH, 3, ...keys, id, gateway, String(expiresAt), JSON.stringify(tail))) === 1;
  }

  /** The session is over (its client closed it): forgets it. False if another gateway holds it. */
  async end(id: string, gateway: string): Promise<boolean> {
    return (await this.redis.eval(END, 2, this.keys.session(id), this.keys.gatewaySessions(gateway), id, gateway)) === 1;
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
      const [kind, value] = (await this.redis.eval(CLAIM, 4, ...keys, id, digest, gateway, user ?? "", deadHolder ?? "", holder, String(resumingMs))) as [string, unknown];
      if (kind === "claimed") return { kind, session: parseStored(id, value as string[]) };
      if (kind === "busy" || kind === "resuming") return { kind, gateway: value as string };
      if (kind === "gone" || kind === "refused") return { kind };
    }
    return { kind: "busy", gateway: "" };
  }

  /** The resume that claimed the session on `gateway` is over: another connection may take it now. */
  async resumed(id: string, gateway: string): Promise<void> {
    await this.redis.eval(RESUMED, 1, this.keys.session(id), gateway);
  }

  /** Sessions whose resume window ended by `now`, each returned (and deleted) for one caller only. */
  async takeExpired(now: number, limit = 100): Promise<StoredSession[]> {
    const ids = await this.redis.zrangebyscore(this.keys.detachedSessions(), "-inf", now, "LIMIT", 0, limit);
    const taken: StoredSession[] = [];
    for (const id of ids) {
      const flat = (await this.redis.eval(TAKE_EXPIRED, 2, this.keys.session(id), this.keys.detachedSessions(), id)) as string[] | null;
      if (flat) taken.push(parseStored(id, flat));
    }
    return taken;
  }

  /** Detaches every session a dead gateway held; their windows start now. Returns how many. */
  async orphan(gateway: string, expiresAt: number): Promise<number> {
    const ids = await this.redis.smembers(this.keys.gatewaySessions(gateway));
    let count = 0;
    for (const id of ids) {
      count += Number(await this.redis.eval(ORPHAN, 2, this.keys.session(id), this.keys.detachedSessions(), id, gateway, String(expiresAt)));
    }
    await this.redis.del(this.keys.gatewaySessions(gateway));
    return count;
  }
}
