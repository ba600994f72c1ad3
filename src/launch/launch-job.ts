/**
 * The launch queue's contract (docs/launch-queue.md), shared by everything that enqueues launches
 * and by the nodes that claim them. A backend in another language can enqueue the same job with
 * its own BullMQ client: queue name = the task's name, BullMQ prefix = `<prefix>:launch`.
 */
import type { LaunchOptions } from "../protocol/client-messages.js";

/** Name of the BullMQ job (informational; nodes accept any name). */
export const LAUNCH_JOB_NAME = "launch";

/** `data` of a launch job. Only `instance` and `task` are required from other backends. */
export interface LaunchJobData {
  /** Instance id; must be a valid name (docs/protocol.md). */
  instance: string;
  /** Task name; must equal the queue's name. */
  task: string;
  args?: Record<string, unknown>;
  options?: LaunchOptions;
  /** Session id of the owning client, if any. */
  owner?: string | null;
  ownerUser?: string | null;
  /** Token of the registry reservation made before enqueueing; absent for direct enqueues. */
  token?: string;
  /** Channel on which the node publishes `launched` / `launch_error`; absent: none. */
  reply?: string | null;
  /** Epoch ms after which no node may start this launch (it reports `no_capacity`). 0: none. */
  deadline?: number;
  /**
   * Set by nodes, not by enqueuers: the nodes whose attempt failed, in order (the task's
   * `attempts` bounds its length). A failed attempt also pushes `deadline` by its own duration.
   */
  tried?: string[];
  /**
   * For Servman's own use (optional): a client to join as part of the launch. The node hands
   * this join to the service once it is ready and puts the answer in its `launched` reply.
   */
  join?: LaunchJoin;
}

/** A client joined as part of its launch (docs/protocol.md#launch-and-join). */
export interface LaunchJoin {
  /** The client's session id. */
  client: string;
  user: string | null;
  /** The join's data, for the service. */
  data: unknown;
  /** The gateway holding the session, where its events go (as a `join` bus message's `gateway`). */
  gateway?: string;
}

/** What a completed launch job returns. */
export interface LaunchJobResult {
  instance: string;
  node: string;
}

/** What a node starts from a job: its owner, options and args, each defaulted when absent or malformed. */
export interface LaunchSpec {
  task: string;
  owner: string | null;
  ownerUser: string | null;
  options: LaunchOptions;
  args: Record<string, unknown>;
  /** The client to join once the instance is ready, if any. */
  join: LaunchJoin | null;
}

function launchJoin(join: unknown): LaunchJoin | null {
  if (typeof join !== "object" || join === null) return null;
  const j = join as Partial<LaunchJoin>;
  if (typeof j.client !== "string" || j.client === "") return null;
  return {
    client: j.client,
    user: typeof j.user === "string" ? j.user : null,
    data: j.data ?? null,
    ...(typeof j.gateway === "string" ? { gateway: j.gateway } : {}),
  };
}

/** The {@link LaunchSpec} of `data`, whose fields are not trusted: jobs may come from other backends. */
export function launchSpec(data: LaunchJobData): LaunchSpec {
  return {
    task: data.task,
    owner: typeof data.owner === "string" ? data.owner : null,
    ownerUser: typeof data.ownerUser === "string" ? data.ownerUser : null,
    options: typeof data.options === "object" && data.options !== null ? data.options : {},
    args: typeof data.args === "object" && data.args !== null && !Array.isArray(data.args) ? data.args : {},
    join: launchJoin(data.join),
  };
}
