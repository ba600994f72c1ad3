/**
 * Every Redis key and pub/sub channel Servman uses, built in this one module (docs/redis.md
 * describes each). Callers pass names already checked by `names.ts`.
 *
 * On a Redis Cluster every Lua script and MULTI must touch one hash slot, so keys carry hash tags
 * (the part in braces is all Redis hashes), in three families (docs/redis.md#hash-slots):
 * - `{<p>}`: the registry of instances and nodes, which the registry scripts change together;
 * - `{<p>:sessions}`: sessions and gateways, which the session scripts change together;
 * - `{<id>}` after the prefix: one instance's logs and post-mortem, so log traffic spreads.
 * Channels carry no braces: each one hashes on its whole name, which spreads sharded pub/sub
 * over the masters. The tags cost nothing on one server, so every topology has the same keys.
 */

/** How many channels each gateway's fanouts are spread over (see `Keys.gatewayChannel`). */
export const GATEWAY_CHANNEL_SHARDS = 16;

/** FNV-1a of `id`, modulo GATEWAY_CHANNEL_SHARDS: which of a gateway's channels an instance uses. */
function shardOf(id: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
  return (hash >>> 0) % GATEWAY_CHANNEL_SHARDS;
}

/** In a `u` regex, only a surrogate that is not half of a pair matches. */
const LONE_SURROGATE = /\p{Surrogate}/gu;

/** Builds the keys and channels of one Servman deployment, all under `prefix`. */
export class Keys {
  readonly prefix: string;
  /** `{<p>}`: the registry's hash tag. */
  private readonly registry: string;
  /** `{<p>:sessions}`: the sessions' hash tag. */
  private readonly sessions: string;
  private readonly cluster: boolean;

  /**
   * @param cluster - on a Redis Cluster, each task's launch queue is named `{<task>}` so that
   *   it has a slot of its own; elsewhere it keeps the task's name (docs/launch-queue.md).
   */
  constructor(prefix: string, options: { cluster?: boolean } = {}) {
    this.prefix = prefix;
    this.registry = `{${prefix}}`;
    this.sessions = `{${prefix}:sessions}`;
    this.cluster = options.cluster ?? false;
  }

  /** Hash: one instance's registry record (task, node, owner, state, created, ...). */
  instance(id: string): string {
    return `${this.registry}:instance:${id}`;
  }

  /** Set: the ids of every instance in the registry. */
  instances(): string {
    return `${this.registry}:instances`;
  }

  /** List: an instance's last log lines (JSON each), kept for a while after it ends. */
  instanceLogs(id: string): string {
    return `${this.prefix}:logs:{${id}}`;
  }

  /** Channel: an instance's log lines as they are written (`servman logs --follow`). */
  instanceLogChannel(id: string): string {
    return `${this.prefix}:logs-live:{${id}}`;
  }

  /** String (JSON) with a TTL: how an instance ended, for `servman inspect` after the fact. */
  postMortem(id: string): string {
    return `${this.prefix}:postmortem:{${id}}`;
  }

  /** Set: ids of the instances one user (a ticket's `sub`) owns, for launch quotas. */
  userInstances(user: string): string {
    // A user id is any string: encoded so that it cannot reach outside its key.
    // encodeURIComponent throws on a lone surrogate; tickets refuse such a `sub`, and a job
    // written by hand gets U+FFFD in its place rather than a failed launch.
    return `${this.registry}:user-instances:${encodeURIComponent(user.replace(LONE_SURROGATE, "\uFFFD"))}`;
  }

  /** Set: ids of the instances a node holds, so they can be found when the node dies. */
  nodeInstances(node: string): string {
    return `${this.registry}:node-instances:${node}`;
  }

  /** Channel: commands for one node (`servman drain`); the node subscribes while it runs. */
  nodeControl(node: string): string {
    return `${this.prefix}:node-control:${node}`;
  }

  /** Channel: cluster-wide events (an instance lost with its node); every gateway subscribes. */
  events(): string {
    return `${this.prefix}:events`;
  }

  /**
   * String: a random id of this Redis dataset, set by the first node to find it missing. A new
   * value means Redis lost its data (restarted empty): nodes then write their registry again.
   */
  epoch(): string {
    return `${this.registry}:epoch`;
  }

  /** Hash with a TTL: one node's record, refreshed by its heartbeat. */
  node(id: string): string {
    return `${this.registry}:node:${id}`;
  }

  /** Set: the ids of every node that registered (stale ones are pruned on read). */
  nodes(): string {
    return `${this.registry}:nodes`;
  }

  /** Sorted set: node ids offering `task`, scored by the time their offer expires (ms). */
  taskNodes(task: string): string {
    return `${this.registry}:task-nodes:${task}`;
  }

  /** BullMQ prefix of the launch queues; each task's queue is named after the task. */
  queuePrefix(): string {
    return `${this.prefix}:launch`;
  }

  /** Channel: what clients and admins send to one instance; its node subscribes while it runs. */
  instanceChannel(id: string): string {
    return `${this.prefix}:to-instance:${id}`;
  }

  /** Channel: events for one client session; the gateway holding the session subscribes. */
  sessionChannel(session: string): string {
    return `${this.prefix}:to-session:${session}`;
  }

  /**
   * Channel: one gateway's share of `instance`'s events (`fanout`: one event for many of its
   * sessions), barriers and rewinds (docs/architecture.md#fan-out-by-gateway). Each gateway has
   * GATEWAY_CHANNEL_SHARDS such channels and subscribes them all; an instance always uses the same
   * one (so its fanouts stay in order), picked by a hash of its id. On a Redis Cluster, a gateway's
   * traffic so spreads over the masters instead of loading the one its single channel hashed to.
   */
  gatewayChannel(gateway: string, instance: string): string {
    return `${this.prefix}:to-gateway:${gateway}:${shardOf(instance)}`;
  }

  /** Every channel of {@link gatewayChannel} for one gateway. */
  gatewayChannels(gateway: string): string[] {
    return Array.from({ length: GATEWAY_CHANNEL_SHARDS }, (_, shard) => `${this.prefix}:to-gateway:${gateway}:${shard}`);
  }

  /** Hash: a client session that can be resumed (gateway, resume token digest, joined instances). */
  session(id: string): string {
    return `${this.sessions}:session:${id}`;
  }

  /** Set: ids of the sessions one gateway holds, so they can be detached when it dies. */
  gatewaySessions(gateway: string): string {
    return `${this.sessions}:gateway-sessions:${gateway}`;
  }

  /** Sorted set: detached session id -> when its resume window ends (ms). */
  detachedSessions(): string {
    return `${this.sessions}:detached-sessions`;
  }

  /** String with a TTL: one gateway's liveness, refreshed by its heartbeat. */
  gateway(id: string): string {
    return `${this.sessions}:gateway:${id}`;
  }

  /** Set: ids of every gateway that registered (dead ones are removed by a reaper). */
  gateways(): string {
    return `${this.sessions}:gateways`;
  }

  /** Channel: launch and stop results for one requester (a gateway or a Launcher). */
  replyChannel(requester: string): string {
    return `${this.prefix}:reply:${requester}`;
  }

  /**
   * String: like {@link epoch}, for the sessions' slot, which may live on another shard and lose
   * its data alone; gateways watch it and write their sessions back.
   */
  sessionsEpoch(): string {
    return `${this.sessions}:epoch`;
  }

  /** The launch queue's name for `task`: the task's name, in braces on a cluster (see the constructor). */
  queueName(task: string): string {
    return this.cluster ? `{${task}}` : task;
  }

  /** The task a launch queue serves (the inverse of {@link queueName}). */
  taskOfQueue(queue: string): string {
    return this.cluster && queue.startsWith("{") && queue.endsWith("}") ? queue.slice(1, -1) : queue;
  }

  /** Patterns matching every key of this deployment (used only to clean up a private prefix). */
  everything(): string[] {
    return [`${this.registry}:*`, `${this.sessions}:*`, `${this.prefix}:*`];
  }
}
