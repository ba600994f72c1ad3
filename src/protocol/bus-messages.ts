/**
 * Messages that travel between Servman processes over Redis pub/sub (docs/redis.md). They are
 * internal: only gateways, nodes and Launchers publish them, so they are typed but not re-validated.
 *
 * Hot path: a client's `send` is published to the instance channel already in the task protocol's
 * `message` shape, and a service's `send` is published to the session channel already in the
 * client protocol's `message` shape, so the relays forward those strings without parsing them.
 */
import type { ErrorCode } from "../errors.js";
import type { ClosedReason } from "./client-messages.js";

/** Published on an instance channel (gateway or Launcher -> node). */
export type ToInstance =
  /**
   * `seq`: the client's number for a numbered send, written right after `client` (sendSeqKey), where
   * the node reads it without parsing the message (nodes/client-send-seqs.ts).
   */
  | { type: "message"; client: string; seq?: number; action: string; data: unknown; channel?: string }
  /** `gateway`: the id of the gateway holding the session, where its events go (`ToGateway`). */
  | { type: "join"; client: string; user: string | null; data: unknown; reply: string; gateway?: string }
  /** `kicked`: a resumed session whose new ticket no longer allows the join (docs/resume.md). */
  | { type: "leave"; client: string; reason: "left" | "disconnected" | "kicked" }
  | { type: "stop"; by: string | null; reply: string | null }
  /**
   * The client resumed its session: what was kept for it goes to `reply` as one `replay`. `answer`:
   * the gateway wants a `resume_answer` first, at once (gateways of earlier versions would not
   * know it).
   */
  | { type: "resume"; client: string; reply: string; gateway?: string; answer?: boolean }
  /**
   * The client's gateway passed the replayed events before position `through` (the replay's
   * `through`) on to its client: the node frees them.
   */
  | { type: "ack"; client: string; through: number }
  /**
   * A gateway could not write a `fanout`'s event to these of its sessions (gone, detaching, or
   * resuming and waiting for this instance's replay): the node keeps it for them. `event` is the
   * fanout's event, as it came.
   */
  | { type: "undelivered"; seq: number; sessions: string[]; event: ToSession }
  /** A gateway handled every fanout the node sent it before the `barrier` numbered `id`. */
  | { type: "flushed"; client: string; id: number }
  /**
   * Gateway `gateway` never got this instance's fanouts numbered after `after` up to `through`
   * (`prev` chain broken, docs/architecture.md#failover): the node tells their sessions `dropped`.
   */
  | { type: "gap"; gateway: string; run: string; after: number; through: number };

/**
 * Published on a gateway's channel (node -> the gateway holding the sessions). `fanout` is written
 * with `event` last, spliced in as the node's JSON text (FANOUT_PREFIX): the gateway takes it out
 * without parsing it.
 */
export type ToGateway =
  /**
   * One event of `instance` for each of `sessions`, in that order; `seq` numbers it per instance.
   * `prev` is the `seq` of the previous fanout of the same `run` (one delivery of the instance on
   * its node) to this gateway, 0 for the first: a gateway puts fanouts back in order by it, and
   * tells a gap (`gap`). Both are optional for nodes of earlier versions.
   */
  | { type: "fanout"; instance: string; seq: number; sessions: string[]; event: ToSession; prev?: number; run?: string }
  /** Answer `flushed` on the instance's channel once every earlier fanout is handled. */
  | { type: "barrier"; instance: string; client: string; id: number }
  /**
   * These sessions' events are kept by the instance's node (a fanout to this gateway reached no
   * subscriber: a failover): the gateway resumes them on their open connections.
   */
  | { type: "rewind"; instance: string; sessions: string[] }
  /**
   * Fanout `seq` (which followed `prev`) of `run` will not come: its publish failed or reached no
   * subscriber, and its node kept or counted its event. The gateway stops waiting for it.
   */
  | { type: "skip"; instance: string; run: string; seq: number; prev: number };

/**
 * Published on a session channel (node -> the gateway holding the session): the session's events,
 * and the answer to its joins.
 */
export type ToSession =
  | { type: "message"; instance: string; action: string; data: unknown; channel?: string }
  | { type: "joined"; instance: string }
  | { type: "join_rejected"; instance: string; reason: string }
  | { type: "closed"; instance: string; reason: ClosedReason }
  | { type: "restarting"; instance: string; reason: "exited" | "crashed"; attempt: number; delayMs: number }
  | { type: "restarted"; instance: string; attempt: number }
  | { type: "dropped"; instance: string; count: number }
  | { type: "alert"; instance: string; kind: "stop_refused"; session: string; user: string | null }
  /**
   * Events kept for a resumed client (JSON objects, in order); `member`: still joined; `through`:
   * the position after the last one (kept or dropped), for the `ack` that frees them.
   */
  | { type: "replay"; instance: string; member: boolean; dropped: number; through: number; events: ToSession[]; seqs?: number[]; run?: string }
  /** Another connection resumed this session: the gateway holding it lets go. */
  | { type: "takeover"; gateway: string }
  /**
   * A node's answer to a `resume`, at once, before it waits for the client's old gateway:
   * `received` is the highest numbered send it received from the client for this instance (0:
   * none). The resuming gateway waits for these before `resumed` (gateway/resume-answers.ts).
   */
  | { type: "resume_answer"; instance: string; received: number };

/**
 * Published on a requester's reply channel (node -> the gateway, Launcher or node that asked for
 * a launch or a stop).
 */
export type ToRequester =
  /** `joined`/`reason`: the service's answer to the join the launch job carried (absent: none carried). */
  | { type: "launched"; instance: string; node: string; token: string; joined?: boolean; reason?: string }
  | { type: "launch_error"; instance: string; token: string; code: ErrorCode; message: string }
  | { type: "stopping"; instance: string; deadlineMs: number }
  | { type: "stopped"; instance: string };

/** Published on a node's control channel (`servman drain` -> node). */
export type NodeCommand = { type: "drain"; deadlineMs?: number };

/** Published on the cluster-wide events channel (a node reaper -> every gateway). */
export type ClusterEvent = { type: "lost"; instance: string; node: string };

/** The first bytes of a `fanout`, as the node writes it. */
export const FANOUT_PREFIX = '{"type":"fanout"';
/** What comes before a fanout's (or undelivered's) event text, which runs to the closing brace. */
export const EVENT_KEY = ',"event":';

/** The first bytes of a pass-through `message`, as `JSON.stringify` writes it. */
export const MESSAGE_PREFIX = '{"type":"message"';
