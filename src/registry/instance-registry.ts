/**
 * The instance registry in Redis: one hash per instance plus a set of ids (docs/redis.md).
 * Reservation and claim are atomic scripts, which is what makes a launch id idempotent: a second
 * launch with the same id can never start a second process.
 */
import type { Redis } from "ioredis";
import type { Keys } from "../keys.js";
import type { LaunchOptions } from "../protocol/client-messages.js";
import { readSetHashes } from "./read-set-hashes.js";

/** Where an instance is in its life. */
export type InstanceState = "launching" | "ready" | "restarting" | "stopping";

/** One instance as the registry holds it. */
export interface InstanceRecord {
  instance: string;
  task: string;
  /** Node running it; empty while the launch waits in the queue. */
  node: string;
  /**
   * The registration of `node` that claimed it (docs/architecture.md#fencing): a node declared
   * dead registers again under a new one, and its writes under the old one are refused.
   */
  incarnation: string;
  /** Session id of the client that launched it; null when an admin or a backend did. */
  owner: string | null;
  /** User id of that client, when it had one. */
  ownerUser: string | null;
  state: InstanceState;
  /** When the launch was requested (ms since epoch). */
  created: number;
  /** When it became ready (ms since epoch), 0 before. */
  readyAt: number;
  pid: number;
  options: LaunchOptions;
  /** Random token tying the reservation to its launch job. */
  token: string;
  /** Launch arguments. */
  args: Record<string, unknown>;
  /** Launch attempts that failed so far (the record went back to its reservation each time). */
  tries: number;
  /** The last failed attempt's error, `code: message`; empty when none failed. */
  lastError: string;
  /** After a failed attempt: when the next one must have been claimed (ms since epoch); 0: none. */
  retryBy: number;
}

/** What a launcher writes when it reserves an id. */
export interface Reservation {
  task: string;
  owner: string | null;
  ownerUser: string | null;
  options: LaunchOptions;
  token: string;
  /** Launch arguments, kept so an instance lost with its node can be launched again. */
  args?: Record<string, unknown>;
}

// Every script that creates or deletes a record also keeps the owner's set of instances (KEYS[3],
// used for launch quotas) in step; ARGV "user" is "1" when the instance has an owning user.

// KEYS: record, id set, user set. ARGV: id, user, quota, then field/value pairs.
// Returns 1 when reserved, 0 when the id is taken, -1 when the user's quota is reached.
const RESERVE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local quota = tonumber(ARGV[3])
if ARGV[2] == '1' and quota > 0 and redis.call('SCARD', KEYS[3]) >= quota then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
return 1`;

// KEYS: record, id set, user set, node's instance set, node's record.
// ARGV: id, user, node, token, created, task, owner, ownerUser, options, args, incarnation.
// A job with a token must find its reservation unclaimed; a job without one (enqueued straight
// into BullMQ by another backend) creates the record. Returns 1 when this node now owns the launch,
// -2 when the node's record does not name this incarnation (it was declared dead: fencing).
const CLAIM = `
if redis.call('HGET', KEYS[5], 'incarnation') ~= ARGV[11] then return -2 end
if ARGV[4] ~= '' then
  if redis.call('HGET', KEYS[1], 'token') ~= ARGV[4] then return 0 end
  if redis.call('HGET', KEYS[1], 'node') ~= '' then return 0 end
  redis.call('HSET', KEYS[1], 'node', ARGV[3], 'incarnation', ARGV[11])
  redis.call('SADD', KEYS[4], ARGV[1])
  return 1
end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'instance', ARGV[1], 'node', ARGV[3], 'token', '', 'created', ARGV[5],
  'task', ARGV[6], 'owner', ARGV[7], 'ownerUser', ARGV[8], 'options', ARGV[9], 'state', 'launching',
  'readyAt', '0', 'pid', '0', 'args', ARGV[10], 'incarnation', ARGV[11])
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
redis.call('SADD', KEYS[4], ARGV[1])
return 1`;

// KEYS: record, id set, user set. ARGV: id, user, token, now. Deletes a reservation no node has
// claimed, unless a failed attempt gave the next one until retryBy. Returns 0, or {tries, lastError}.
const CANCEL_UNCLAIMED = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[3] then return 0 end
if redis.call('HGET', KEYS[1], 'node') ~= '' then return 0 end
if tonumber(redis.call('HGET', KEYS[1], 'retryBy') or '0') > tonumber(ARGV[4]) then return 0 end
local tries = redis.call('HGET', KEYS[1], 'tries') or '0'
local lastError = redis.call('HGET', KEYS[1], 'lastError') or ''
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SREM', KEYS[3], ARGV[1]) end
return {tries, lastError}`;

// KEYS: record, node's instance set.
// ARGV: id, node, token, next token, last error, retry by, incarnation ('' from a reaper: any).
// A failed attempt gives the claim back: the record is a reservation again (same id, so nobody
// else can take it), counting the failure. Returns the failures so far, or 0 if `node` holds nothing.
const RELEASE = `
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[3] then return 0 end
if ARGV[7] ~= '' and (redis.call('HGET', KEYS[1], 'incarnation') or '') ~= ARGV[7] then return 0 end
redis.call('HSET', KEYS[1], 'node', '', 'incarnation', '', 'state', 'launching', 'pid', '0', 'readyAt', '0', 'token', ARGV[4],
  'lastError', ARGV[5], 'retryBy', ARGV[6])
redis.call('SREM', KEYS[2], ARGV[1])
return redis.call('HINCRBY', KEYS[1], 'tries', 1)`;

// KEYS: record, dead node's record, dead node's instance set, new node's instance set.
// ARGV: id, token, dead node, new node, new node's incarnation. A launch whose node died
// mid-launch (its BullMQ lock ran out, so the job runs again elsewhere) moves to the new node,
// only while the old one is gone.
const TAKE_OVER = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[3] then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'launching' then return 0 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'node', ARGV[4], 'incarnation', ARGV[5])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('SADD', KEYS[4], ARGV[1])
return 1`;

// KEYS: record. ARGV: node, incarnation, then field/value pairs. Updates a record that still
// exists and still names this node and incarnation (never recreates one, never writes over a
// relaunch's record). Returns 1 when written, 0 when the record is gone, -1 when it is not ours.
const UPDATE_OWN = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[1] then return -1 end
if (redis.call('HGET', KEYS[1], 'incarnation') or '') ~= ARGV[2] then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1`;

// KEYS: record, id set, user set, node's instance set, node's record.
// ARGV: id, user, node, incarnation ('' from a reaper: any but the node's current one).
// Removes the record only while this node (and incarnation) holds it; the node's own index is
// cleaned too, unless the record belongs to another incarnation of the node (fencing).
const REMOVE_IF_NODE = `
local inc = redis.call('HGET', KEYS[1], 'incarnation') or ''
if redis.call('HGET', KEYS[1], 'node') == ARGV[3] then
  if ARGV[4] ~= '' then
    if inc ~= ARGV[4] then return 0 end
  elseif redis.call('HGET', KEYS[5], 'incarnation') == inc then
    return 0
  end
end
redis.call('SREM', KEYS[4], ARGV[1])
if redis.call('HGET', KEYS[1], 'node') ~= ARGV[3] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('SREM', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SREM', KEYS[3], ARGV[1]) end
return 1`;

// KEYS: record, id set, user set, node's instance set. ARGV: id, user, then field/value pairs.
// Writes the record of an instance a node runs, unless one exists (Redis lost its data).
const RESTORE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[1])
if ARGV[2] == '1' then redis.call('SADD', KEYS[3], ARGV[1]) end
redis.call('SADD', KEYS[4], ARGV[1])
return 1`;

function fromHash(hash: Record<string, string>): InstanceRecord | null {
  if (hash.instance === undefined || hash.task === undefined) return null;
  const parsed = <T>(text: string | undefined): T => {
    try {
      return (text ? JSON.parse(text) : {}) as T;
    } catch {
      return {} as T;
    }
  };
  return {
    instance: hash.instance,
    task: hash.task,
    node: hash.node ?? "",
    incarnation: hash.incarnation ?? "",
    owner: hash.owner ? hash.owner : null,
    ownerUser: hash.ownerUser ? hash.ownerUser : null,
    state: (hash.state ?? "launching") as InstanceState,
    created: Number(hash.created ?? 0),
    readyAt: Number(hash.readyAt ?? 0),
    pid: Number(hash.pid ?? 0),
    options: parsed<LaunchOptions>(hash.options),
    token: hash.token ?? "",
    args: parsed<Record<string, unknown>>(hash.args),
    tries: Number(hash.tries ?? 0),
    lastError: hash.lastError ?? "",
    retryBy: Number(hash.retryBy ?? 0),
  };
}

/** Reads and writes instance records. Holds no connection of its own. */
export class InstanceRegistry {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {}

  /** The keys every create/delete script takes, and whether there is an owning user. */
  private scriptKeys(id: string, ownerUser: string | null): { keys: [string, string, string]; user: "0" | "1" } {
    return {
      keys: [this.keys.instance(id), this.keys.instances(), this.keys.userInstances(ownerUser ?? "")],
      user: ownerUser ? "1" : "0",
    };
  }

  /**
   * Reserves `id` for a launch: "reserved", "taken" when an instance with that id exists, or
   * "quota" when the owning user already has `quota` instances (0: no quota).
   */
  async reserve(id: string, r: Reservation, quota = 0): Promise<"reserved" | "taken" | "quota"> {
    const fields = [
      "instance", id, "task", r.task, "node", "", "owner", r.owner ?? "", "ownerUser", r.ownerUser ?? "",
      "state", "launching", "created", String(Date.now()), "readyAt", "0", "pid", "0",
      "options", JSON.stringify(r.options), "token", r.token, "args", JSON.stringify(r.args ?? {}),
    ];
    const { keys, user } = this.scriptKeys(id, r.ownerUser);
    const done = await this.redis.eval(RESERVE, 3, ...keys, id, user, String(quota), ...fields);
    return done === 1 ? "reserved" : done === -1 ? "quota" : "taken";
  }

  /**
   * Claims a launch for `node`'s registration `incarnation` (see CLAIM above): "claimed",
   * "taken", or "fenced" when the node's record does not name that incarnation.
   */
  async claim(id: string, node: string, incarnation: string, token: string, r: Omit<Reservation, "token">): Promise<"claimed" | "taken" | "fenced"> {
    const { keys, user } = this.scriptKeys(id, r.ownerUser);
    const done = await this.redis.eval(
      CLAIM, 5, ...keys, this.keys.nodeInstances(node), this.keys.node(node),
      id, user, node, token, String(Date.now()), r.task, r.owner ?? "", r.ownerUser ?? "", JSON.stringify(r.options), JSON.stringify(r.args ?? {}), incarnation,
    );
    return done === 1 ? "claimed" : done === -2 ? "fenced" : "taken";
  }

  /**
   * Deletes a reservation no node has claimed (and whose next attempt is not still due, see
   * {@link release}). Returns null when it did not, else the failed attempts and the last error:
   * the launch will never start.
   */
  async cancelUnclaimed(id: string, token: string, ownerUser: string | null): Promise<{ tries: number; lastError: string } | null> {
    const { keys, user } = this.scriptKeys(id, ownerUser);
    const done = (await this.redis.eval(CANCEL_UNCLAIMED, 3, ...keys, id, user, token, String(Date.now()))) as 0 | [string, string];
    return done === 0 ? null : { tries: Number(done[0]), lastError: done[1] };
  }

  /**
   * Turns `node`'s claim back into the reservation after a failed attempt, under `nextToken`
   * (the same token, except for a direct enqueue, which had none). `incarnation`: the node's
   * registration that claimed it ("" for a reaper: any). Returns the failures so far, or 0 when
   * `node` did not hold the launch.
   */
  async release(id: string, node: string, token: string, next: { token: string; lastError: string; retryBy: number }, incarnation = ""): Promise<number> {
    const done = await this.redis.eval(RELEASE, 2, this.keys.instance(id), this.keys.nodeInstances(node), id, node, token, next.token, next.lastError, String(next.retryBy), incarnation);
    return Number(done);
  }

  /** Moves a launch claimed by `deadNode`, whose record has expired, to `node` (registration `incarnation`); true when it did. */
  async takeOver(id: string, token: string, deadNode: string, node: string, incarnation: string): Promise<boolean> {
    const keys = [this.keys.instance(id), this.keys.node(deadNode), this.keys.nodeInstances(deadNode), this.keys.nodeInstances(node)];
    return (await this.redis.eval(TAKE_OVER, 4, ...keys, id, token, deadNode, node, incarnation)) === 1;
  }

  /**
   * Records a state change (and any extra fields) of an instance still in the registry and still
   * held by `node`'s registration `incarnation`: "written", "gone", or "not_ours" (fenced).
   */
  async update(id: string, node: string, incarnation: string, fields: Partial<Pick<InstanceRecord, "state" | "readyAt" | "pid">>): Promise<"written" | "gone" | "not_ours"> {
    const flat: string[] = [];
    for (const [k, v] of Object.entries(fields)) flat.push(k, String(v));
    if (flat.length === 0) return "written";
    const done = await this.redis.eval(UPDATE_OWN, 1, this.keys.instance(id), node, incarnation, ...flat);
    return done === 1 ? "written" : done === -1 ? "not_ours" : "gone";
  }

  /**
   * Removes the record while `node` still holds it (so a relaunch elsewhere is not erased), under
   * registration `incarnation`; a reaper passes "" (any registration but the node's current one).
   */
  async removeIfNode(id: string, node: string, ownerUser: string | null, incarnation = ""): Promise<boolean> {
    const { keys, user } = this.scriptKeys(id, ownerUser);
    return (await this.redis.eval(REMOVE_IF_NODE, 5, ...keys, this.keys.nodeInstances(node), this.keys.node(node), id, user, node, incarnation)) === 1;
  }

  /**
   * Writes `record` (of an instance its node runs) when Redis has no record under its id, with
   * the sets that index it; true when it did. For rebuilding the registry after Redis lost it.
   */
  async restore(record: InstanceRecord): Promise<boolean> {
    const fields = [
      "instance", record.instance, "task", record.task, "node", record.node, "incarnation", record.incarnation, "owner", record.owner ?? "", "ownerUser", record.ownerUser ?? "",
      "state", record.state, "created", String(record.created), "readyAt", String(record.readyAt), "pid", String(record.pid),
      "options", JSON.stringify(record.options), "token", record.token, "args", JSON.stringify(record.args),
    ];
    const { keys, user } = this.scriptKeys(record.instance, record.ownerUser);
    return (await this.redis.eval(RESTORE, 4, ...keys, this.keys.nodeInstances(record.node), record.instance, user, ...fields)) === 1;
  }

  /** Ids of the instances `node` holds (or held, if it died). */
  heldBy(node: string): Promise<string[]> {
    return this.redis.smembers(this.keys.nodeInstances(node));
  }

  /** How many instances `user` owns. */
  countOwnedBy(user: string): Promise<number> {
    return this.redis.scard(this.keys.userInstances(user));
  }

  /** One record, or null when there is no such instance. */
  async get(id: string): Promise<InstanceRecord | null> {
    return fromHash(await this.redis.hgetall(this.keys.instance(id)));
  }

  /** Every record, oldest first; ids whose record is gone are pruned from the set. */
  async list(): Promise<InstanceRecord[]> {
    const records: InstanceRecord[] = [];
    const stale: string[] = [];
    for (const { id, hash } of await readSetHashes(this.redis, this.keys.instances(), (i) => this.keys.instance(i))) {
      if (hash === null) continue;
      const record = fromHash(hash);
      if (record) records.push(record);
      else stale.push(id);
    }
    if (stale.length > 0) await this.redis.srem(this.keys.instances(), ...stale);
    return records.sort((a, b) => a.created - b.created || a.instance.localeCompare(b.instance));
  }
}
