/**
 * Node liveness in Redis: each node refreshes a hash with a TTL and its offer in one sorted set per
 * task (score = when the offer expires). A node that stops refreshing disappears by itself.
 */
import type { RedisClient } from "../redis-connection.js";
import type { Keys } from "../keys.js";
import { LIVENESS_TTL_MS, membersWithoutKey } from "./liveness.js";
import { runScript } from "./lua-scripts.js";
import { readSetHashes } from "./read-set-hashes.js";

/** One node as `servman nodes` and `GET /v1/nodes` show it. */
export interface NodeRecord {
  id: string;
  host: string;
  pid: number;
  tasks: string[];
  capacity: number;
  /** Live instances (launching, ready or stopping). */
  running: number;
  /** When the node started (ms since epoch). */
  started: number;
  /** Last heartbeat (ms since epoch). */
  seen: number;
  /** True while the node takes no new launches. */
  draining: boolean;
  /** Invalid lines or messages its services sent (dropped), since the node started. */
  invalidOutput: number;
  /** Exceptions caught at the node's entry points (a Redis message, a service message), since it started. */
  internalErrors: number;
  /** Messages on the node's Redis channels dropped for not having the expected shape, since it started. */
  badBusMessages: number;
  /** Client messages dropped because their instance's process was not reading its input, since the node started. */
  droppedForBackpressure: number;
  /** Per task with a warm pool: processes started and waiting for a launch (not in `running`). */
  warm: Record<string, number>;
  /** Times the node found it had been declared dead while unresponsive and fenced itself, since it started. */
  fenced: number;
}

/**
 * How a heartbeat came out: the record was written (`current`); the node was declared dead since
 * its last one (`fenced`: its id left the set of nodes, or its record names another registration),
 * and nothing was written; or, registering again after that, another live process holds the id
 * (`taken`) (docs/architecture.md#fencing).
 */
export type HeartbeatOutcome = "current" | "fenced" | "taken";

/**
 * `refresh`: the node's usual heartbeat. `register`: a new registration, written whatever is
 * there (a node starting, or writing itself back after Redis lost its data). `rejoin`: a new
 * registration after fencing, written unless another live process holds the id.
 */
export type HeartbeatMode = "refresh" | "register" | "rejoin";

export class NodeRegistry {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: Keys,
  ) {}

  /**
   * Writes the node's record (under its registration `incarnation`, lua/node-heartbeat.lua) and
   * offers; called every HEARTBEAT_MS (liveness.ts). Nothing is written when the outcome is not
   * `current` (see HeartbeatMode).
   */
  async heartbeat(node: NodeRecord, incarnation: string, mode: HeartbeatMode): Promise<HeartbeatOutcome> {
    const now = Date.now();
    const fields: Record<string, string> = {
      id: node.id,
      host: node.host,
      pid: String(node.pid),
      tasks: JSON.stringify(node.tasks),
      capacity: String(node.capacity),
      running: String(node.running),
      started: String(node.started),
      seen: String(now),
      draining: node.draining ? "1" : "0",
      invalidOutput: String(node.invalidOutput),
      internalErrors: String(node.internalErrors),
      badBusMessages: String(node.badBusMessages),
      droppedForBackpressure: String(node.droppedForBackpressure),
      warm: JSON.stringify(node.warm),
      fenced: String(node.fenced),
    };
    const written = await runScript(this.redis, "nodeHeartbeat", [this.keys.node(node.id), this.keys.nodes()], [node.id, incarnation, String(LIVENESS_TTL_MS), mode, ...Object.entries(fields).flat()]);
    if (written !== 1) return written === -1 ? "taken" : "fenced";
    const p = this.redis.multi();
    for (const task of node.tasks) {
      if (node.draining) p.zrem(this.keys.taskNodes(task), node.id);
      else p.zadd(this.keys.taskNodes(task), now + LIVENESS_TTL_MS, node.id);
      // Offers of nodes that died without unregistering would otherwise stay forever.
      p.zremrangebyscore(this.keys.taskNodes(task), "-inf", now);
    }
    await p.exec();
    return "current";
  }

  /** Removes the node's record and offers (clean shutdown). */
  async unregister(id: string, tasks: readonly string[]): Promise<void> {
    const p = this.redis.multi();
    p.del(this.keys.node(id));
    p.srem(this.keys.nodes(), id);
    for (const task of tasks) p.zrem(this.keys.taskNodes(task), id);
    await p.exec();
  }

  /** How many live nodes offer `task`. */
  async offering(task: string): Promise<number> {
    return this.redis.zcount(this.keys.taskNodes(task), Date.now(), "+inf");
  }

  /** Ids of the live nodes that offer `task` (draining ones withdraw their offers). */
  offeringNodes(task: string): Promise<string[]> {
    return this.redis.zrangebyscore(this.keys.taskNodes(task), Date.now(), "+inf");
  }

  /** Ids of nodes that registered and whose record has expired: dead, not yet reaped. */
  expired(): Promise<string[]> {
    return membersWithoutKey(this.redis, this.keys.nodes(), (id) => this.keys.node(id));
  }

  /**
   * Takes a dead node out of the set while its record is still missing; true for exactly one
   * caller, which then reaps it. This is what declares the node dead: a node that finds its id
   * gone from the set fences itself.
   */
  async claimReap(id: string): Promise<boolean> {
    return (await runScript(this.redis, "nodeClaimReap", [this.keys.node(id), this.keys.nodes()], [id])) === 1;
  }

  /** Every live node (dead ones are left for the reaper). */
  async list(): Promise<NodeRecord[]> {
    const nodes: NodeRecord[] = [];
    for (const { hash: h } of await readSetHashes(this.redis, this.keys.nodes(), (id) => this.keys.node(id))) {
      if (h === null || h.id === undefined) continue;
      nodes.push({
        id: h.id,
        host: h.host ?? "",
        pid: Number(h.pid ?? 0),
        tasks: JSON.parse(h.tasks ?? "[]") as string[],
        capacity: Number(h.capacity ?? 0),
        running: Number(h.running ?? 0),
        started: Number(h.started ?? 0),
        seen: Number(h.seen ?? 0),
        draining: h.draining === "1",
        invalidOutput: Number(h.invalidOutput ?? 0),
        internalErrors: Number(h.internalErrors ?? 0),
        badBusMessages: Number(h.badBusMessages ?? 0),
        droppedForBackpressure: Number(h.droppedForBackpressure ?? 0),
        warm: JSON.parse(h.warm ?? "{}") as Record<string, number>,
        fenced: Number(h.fenced ?? 0),
      });
    }
    return nodes.sort((a, b) => a.id.localeCompare(b.id));
  }
}
