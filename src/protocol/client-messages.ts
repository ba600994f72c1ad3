/**
 * The client protocol (docs/protocol.md): one schema per request type, the types they give, and the
 * events the gateway sends. Requests may carry fields we do not know (forward compatibility);
 * the fields we do know are checked strictly.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import type { ErrorCode } from "../errors.js";
import { NAME_PATTERN } from "../names.js";
import { valueTooDeep } from "./json-depth.js";
import { compile, type Validator } from "./validate.js";

const Name = Type.String({ pattern: NAME_PATTERN.source });
const RequestId = Type.Union([Type.String({ maxLength: 128 }), Type.Number()]);
const UserList = Type.Array(Type.String({ maxLength: 256 }), { maxItems: 10_000 });

/** Options of a launch request; all optional. */
export const LaunchOptionsSchema = Type.Object({
  closeOnOwnerLeave: Type.Optional(Type.Boolean()),
  allow: Type.Optional(UserList),
  deny: Type.Optional(UserList),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 3_600_000 })),
});
export type LaunchOptions = Static<typeof LaunchOptionsSchema>;

function request<T extends string, P extends Record<string, TSchema>>(type: T, props: P) {
  return Type.Object({ type: Type.Literal(type), id: Type.Optional(RequestId), ...props });
}

export const LaunchRequestSchema = request("launch", {
  task: Name,
  args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  instance: Type.Optional(Name),
  options: Type.Optional(LaunchOptionsSchema),
  /** Join the sender as part of the launch (docs/protocol.md#launch-and-join): `true`, or `{ data }` for the service's join. */
  join: Type.Optional(Type.Union([Type.Literal(true), Type.Object({ data: Type.Optional(Type.Unknown()) })])),
});
export const JoinRequestSchema = request("join", { instance: Name, data: Type.Optional(Type.Unknown()) });
export const SendRequestSchema = request("send", {
  instance: Name,
  action: Type.String({ minLength: 1, maxLength: 256 }),
  data: Type.Optional(Type.Unknown()),
  channel: Type.Optional(Type.String({ maxLength: 256 })),
  /** Answer `sent` (with the id) once published: opt-in, so plain sends cost no reply frame. */
  ack: Type.Optional(Type.Boolean()),
  /**
   * The client's own number for this send (per session, from 1, +1 each send): a send whose
   * number was already taken is not relayed again (docs/protocol.md#numbered-sends).
   */
  seq: Type.Optional(Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER })),
});
export const LeaveRequestSchema = request("leave", { instance: Name });
export const StopRequestSchema = request("stop", { instance: Name });
export const ResumeRequestSchema = request("resume", {
  session: Type.String({ maxLength: 128 }),
  resume: Type.String({ maxLength: 256 }),
  /** The last event `seq` the client received (docs/protocol.md#resume); 0: none. */
  seq: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER })),
});
export const PingRequestSchema = request("ping", {});

export type LaunchRequest = Static<typeof LaunchRequestSchema>;
export type JoinRequest = Static<typeof JoinRequestSchema>;
export type SendRequest = Static<typeof SendRequestSchema>;
export type LeaveRequest = Static<typeof LeaveRequestSchema>;
export type StopRequest = Static<typeof StopRequestSchema>;
export type ResumeRequest = Static<typeof ResumeRequestSchema>;
export type PingRequest = Static<typeof PingRequestSchema>;
export type ClientRequest = LaunchRequest | JoinRequest | SendRequest | LeaveRequest | StopRequest | ResumeRequest | PingRequest;
export type RequestId = string | number;

/** `{ id }` to spread into a reply, or nothing when its request had no id. */
export function idOf(id: RequestId | undefined): { id?: RequestId } {
  return id === undefined ? {} : { id };
}

const validators: Record<ClientRequest["type"], Validator<TSchema>> = {
  launch: compile(LaunchRequestSchema),
  join: compile(JoinRequestSchema),
  send: compile(SendRequestSchema),
  leave: compile(LeaveRequestSchema),
  stop: compile(StopRequestSchema),
  resume: compile(ResumeRequestSchema),
  ping: compile(PingRequestSchema),
};

/** The outcome of parsing one client frame: a request, or an error to send back. */
export type ParsedRequest = { ok: true; request: ClientRequest } | { ok: false; id: RequestId | undefined; code: ErrorCode; message: string };

function requestIdOf(value: Record<string, unknown>): RequestId | undefined {
  const id = value.id;
  return (typeof id === "string" && id.length <= 128) || (typeof id === "number" && Number.isFinite(id)) ? id : undefined;
}

/**
 * The request id of a text frame, if it is a JSON object carrying a valid one; only parses, never
 * validates (for frames refused before validation, such as over the rate limit). Never throws.
 */
export function frameRequestId(text: string): RequestId | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? requestIdOf(value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parses and validates one text frame from a client. Never throws. A frame nested deeper than
 * `maxDepth` (the frame object is level 1) is refused before anything walks it recursively.
 */
export function parseClientFrame(text: string, maxDepth: number): ParsedRequest {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, id: undefined, code: "bad_request", message: "frame is not valid JSON" };
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, id: undefined, code: "bad_request", message: "frame must be a JSON object" };
  }
  const obj = value as Record<string, unknown>;
  const id = requestIdOf(obj);
  if (valueTooDeep(obj, maxDepth)) {
    return { ok: false, id, code: "bad_request", message: `frame is nested deeper than ${maxDepth} levels (gateway.limits.maxDepth)` };
  }
  if (typeof obj.type !== "string") {
    return { ok: false, id, code: "bad_request", message: "field type: must be a string" };
  }
  const validator = Object.hasOwn(validators, obj.type) ? validators[obj.type as ClientRequest["type"]] : undefined;
  if (!validator) {
    return { ok: false, id, code: "unknown_type", message: `unknown request type ${JSON.stringify(obj.type.slice(0, 64))}` };
  }
  const problem = validator.explain(obj);
  if (problem !== null) return { ok: false, id, code: "bad_request", message: `${obj.type}: ${problem}` };
  return { ok: true, request: obj as ClientRequest };
}

/** Why a client is no longer joined to an instance. */
export type ClosedReason = "stopped" | "exited" | "crashed" | "lost" | "kicked";

/** Events and replies the gateway sends to clients. */
export type ServerFrame =
  /** `features`: what this gateway adds to the v1 protocol (`send-seq`: numbered sends, docs/protocol.md#welcome). */
  | { type: "welcome"; session: string; resume: string; gateway: string; features: string[] }
  /** `joined` (and `reason` when false) only when the launch carried `join`. */
  | { type: "launched"; id?: RequestId; instance: string; node: string; joined?: boolean; reason?: string }
  | { type: "joined"; id?: RequestId; instance: string }
  | { type: "left"; id?: RequestId; instance: string }
  | { type: "stopped"; id?: RequestId; instance: string }
  | { type: "sent"; id: RequestId; instance: string }
  /** `acked`: the last numbered send the cluster accepted; the client sends the later ones again. */
  | { type: "resumed"; id?: RequestId; session: string; instances: string[]; acked: number }
  /** Every numbered send up to `seq` was handled (relayed, or answered with an error): the client may forget them. */
  | { type: "accepted"; seq: number }
  | { type: "pong"; id?: RequestId }
  | { type: "message"; instance: string; action: string; data: unknown; channel?: string }
  | { type: "closed"; instance: string; reason: ClosedReason }
  | { type: "dropped"; instance: string; count: number }
  | { type: "restarting"; instance: string; reason: "exited" | "crashed"; attempt: number; delayMs: number }
  | { type: "restarted"; instance: string; attempt: number }
  | { type: "alert"; instance: string; kind: "stop_refused"; session: string; user: string | null }
  | { type: "error"; id?: RequestId; code: ErrorCode; message: string };
