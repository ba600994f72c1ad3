/**
 * The instance registry in Redis: one hash per instance plus a set of ids (docs/redis.md).
 * Reservation and claim are atomic scripts, which is what makes a launch id idempotent: a second
 * launch with the same id can never start a second process.
 */
import type { RedisClient } from "../redis-connection.js";
import type { Keys } from "../keys.js";
import type { LaunchOptions } from "../protocol/client-messages.js";
import { runScript } from "./lua-scripts.js";
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

// Every script (lua/instance-*.lua) that creates or deletes a record also keeps the owner's set
// of instances (used for launch quotas) in step; ARGV "user" is "1" when the instance has an
// owning user.

/** A record's fields as the hash holds them, as field/value pairs. */
function toFields(r: Omit<InstanceRecord, "tries" | "lastError" | "retryBy">): string[] {
  return [
    "instance",
    r.instance,
    "task",
    r.task,
    "node",
    r.node,
    "incarnation",
    r.incarnation,
    "owner",
    r.owner ?? "",
    "ownerUser",
    r.ownerUser ?? "",
    "state",
    r.state,
    "created",
    String(r.created),
    "readyAt",
    String(r.readyAt),
    "pid",
    String(r.pid),
    "options",
    JSON.stringify(r.options),
    "token",
    r.token,
    "args",
    JSON.stringify(r.args),
  ];
}

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
    private readonly redis: RedisClient,
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
    const fields = toFields({ ...r, instance: id, node: "", incarnation: "", state: "launching", created: Date.now(), readyAt: 0, pid: 0, args: r.args ?? {} });
    const { keys, user } = this.scriptKeys(id, r.ownerUser);
    const done = await runScript(this.redis, "instanceReserve", keys, [id, user, String(quota), ...fields]);
    return done === 1 ? "reserved" : done === -1 ? "quota" : "taken";
  }

  /**
   * Claims a launch for `node`'s registration `incarnation` (lua/instance-claim.lua): "claimed",
   * "taken", or "fenced" when the node's record does not name that incarnation.
   */
  async claim(id: string, node: string, incarnation: string, token: string, r: Omit<Reservation, "token">): Promise<"claimed" | "taken" | "fenced"> {
    const { keys, user } = this.scriptKeys(id, r.ownerUser);
    const done = await runScript(
      this.redis,
      "instanceClaim",
      [...keys, this.keys.nodeInstances(node), this.keys.node(node)],
      [id, user, node, token, String(Date.now()), r.task, r.owner ?? "", r.ownerUser ?? "", JSON.stringify(r.options), JSON.stringify(r.args ?? {}), incarnation],
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
    const done = (await runScript(this.redis, "instanceCancelUnclaimed", keys, [id, user, token, String(Date.now())])) as 0 | [string, string];
    return done === 0 ? null : { tries: Number(done[0]), lastError: done[1] };
  }

  /**
   * Turns `node`'s claim back into the reservation after a failed attempt, under `nextToken`
   * (the same token, except for a direct enqueue, which had none). `incarnation`: the node's
   * registration that claimed it ("" for a reaper: any). Returns the failures so far, or 0 when
   * `node` did not hold the launch.
   */
  async release(id: string, node: string, token: string, next: { token: string; lastError: string; retryBy: number }, incarnation = ""): Promise<number> {
    const done = await runScript(
      this.redis,
      "instanceRelease",
      [this.keys.instance(id), this.keys.nodeInstances(node)],
      [id, node, token, next.token, next.lastError, String(next.retryBy), incarnation],
    );
    return Number(done);
  }

  /** Moves a launch claimed by `deadNode`, whose record has expired, to `node` (registration `incarnation`); true when it did. */
  async takeOver(id: string, token: string, deadNode: string, node: string, incarnation: string): Promise<boolean> {
    const keys = [this.keys.instance(id), this.keys.node(deadNode), this.keys.nodeInstances(deadNode), this.keys.nodeInstances(node)];
    return (await runScript(this.redis, "instanceTakeOver", keys, [id, token, deadNode, node, incarnation])) === 1;
  }

  /**
   * Records a state change (and any extra fields) of an instance still in the registry and still
   * held by `node`'s registration `incarnation` (lua/instance-update-own.lua): "written", "gone",
   * or "not_ours" (fenced).
   */
  async update(id: string, node: string, incarnation: string, fields: Partial<Pick<InstanceRecord, "state" | "readyAt" | "pid">>): Promise<"written" | "gone" | "not_ours"> {
    const flat: string[] = [];
    for (const [k, v] of Object.entries(fields)) flat.push(k, String(v));
    if (flat.length === 0) return "written";
    const done = await runScript(this.redis, "instanceUpdateOwn", [this.keys.instance(id)], [node, incarnation, ...flat]);
    return done === 1 ? "written" : done === -1 ? "not_ours" : "gone";
  }

  /**
   * Removes the record while `node` still holds it (so a relaunch elsewhere is not erased), under
   * registration `incarnation`; a reaper passes "" (any registration but the node's current one).
   */
  async removeIfNode(id: string, node: string, ownerUser: string | null, incarnation = ""): Promise<boolean> {
    const { keys, user } = this.scriptKeys(id, ownerUser);
    return (await runScript(this.redis, "instanceRemoveIfNode", [...keys, this.keys.nodeInstances(node), this.keys.node(node)], [id, user, node, incarnation])) === 1;
  }

  /**
   * Writes `record` (of an instance its node runs) when Redis has no record under its id, with
   * the sets that index it; true when it did. For rebuilding the registry after Redis lost it.
   */
  async restore(record: InstanceRecord): Promise<boolean> {
    const { keys, user } = this.scriptKeys(record.instance, record.ownerUser);
    return (await runScript(this.redis, "instanceRestore", [...keys, this.keys.nodeInstances(record.node)], [record.instance, user, ...toFields(record)])) === 1;
  }

  /** Ids of the instances `node` holds (or held, if it died). */
  heldBy(node: string): Promise<string[]> {
    return this.redis.smembers(this.keys.nodeInstances(node));
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
