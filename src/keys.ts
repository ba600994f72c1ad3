/**
 * Every Redis key and pub/sub channel Servman uses, built in this one module (docs/redis.md
 * describes each). Callers pass names already checked by `names.ts`.
 */

/** Builds the keys and channels of one Servman deployment, all under `prefix`. */
/** In a `u` regex, only a surrogate that is not half of a pair matches. */
const LONE_SURROGATE = /\p{Surrogate}/gu;

export class Keys {
  readonly prefix: string;

  constructor(prefix: string) {
    this.prefix = prefix;
  }

  /** Hash: one instance's registry record (task, node, owner, state, created, ...). */
  instance(id: string): string {
    return `${this.prefix}:instance:${id}`;
  }

  /** Set: the ids of every instance in the registry. */
  instances(): string {
    return `${this.prefix}:instances`;
  }

  /** List: an instance's last log lines (JSON each), kept for a while after it ends. */
  instanceLogs(id: string): string {
    return `${this.prefix}:logs:${id}`;
  }

  /** Channel: an instance's log lines as they are written (`servman logs --follow`). */
  instanceLogChannel(id: string): string {
    return `${this.prefix}:logs-live:${id}`;
  }

  /** String (JSON) with a TTL: how an instance ended, for `servman inspect` after the fact. */
  postMortem(id: string): string {
    return `${this.prefix}:postmortem:${id}`;
  }

  /** Set: ids of the instances one user (a ticket's `sub`) owns, for launch quotas. */
  userInstances(user: string): string {
    // A user id is any string: encoded so that it cannot reach outside its key.
    // encodeURIComponent throws on a lone surrogate; tickets refuse such a `sub`, and a job
    // written by hand gets U+FFFD in its place rather than a failed launch.
    return `${this.prefix}:user-instances:${encodeURIComponent(user.replace(LONE_SURROGATE, "\uFFFD"))}`;
  }

  /** Set: ids of the instances a node holds, so they can be found when the node dies. */
  nodeInstances(node: string): string {
    return `${this.prefix}:node-instances:${node}`;
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
    return `${this.prefix}:epoch`;
  }

  /** Hash with a TTL: one node's record, refreshed by its heartbeat. */
  node(id: string): string {
    return `${this.prefix}:node:${id}`;
  }

  /** Set: the ids of every node that registered (stale ones are pruned on read). */
  nodes(): string {
    return `${this.prefix}:nodes`;
  }

  /** Sorted set: node ids offering `task`, scored by the time their offer expires (ms). */
  taskNodes(task: string): string {
    return `${this.prefix}:task-nodes:${task}`;
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
   * Channel: one gateway's share of its instances' events (`fanout`: one event for many of its
   * sessions) and barriers; that gateway subscribes while it runs (docs/architecture.md).
   */
  gatewayChannel(gateway: string): string {
    return `${this.prefix}:to-gateway:${gateway}`;
  }

  /** Hash: a client session that can be resumed (gateway, resume token digest, joined instances). */
  session(id: string): string {
    return `${this.prefix}:session:${id}`;
  }

  /** Set: ids of the sessions one gateway holds, so they can be detached when it dies. */
  gatewaySessions(gateway: string): string {
    return `${this.prefix}:gateway-sessions:${gateway}`;
  }

  /** Sorted set: detached session id -> when its resume window ends (ms). */
  detachedSessions(): string {
    return `${this.prefix}:detached-sessions`;
  }

  /** String with a TTL: one gateway's liveness, refreshed by its heartbeat. */
  gateway(id: string): string {
    return `${this.prefix}:gateway:${id}`;
  }

  /** Set: ids of every gateway that registered (dead ones are removed by a reaper). */
  gateways(): string {
    return `${this.prefix}:gateways`;
  }

  /** Channel: launch and stop results for one requester (a gateway or a Launcher). */
  replyChannel(requester: string): string {
    return `${this.prefix}:reply:${requester}`;
  }

  /** Pattern matching every key of this deployment (used only to clean up a private prefix). */
  everything(): string {
    return `${this.prefix}:*`;
  }
}
