/**
 * The task protocol (docs/task-protocol.md) between a node and one instance process. The same messages travel
 * over Node IPC (`module` tasks) and as one JSON object per line (`command` tasks).
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";
import { valueTooDeep } from "./json-depth.js";
import { compile, type Validator } from "./validate.js";

/**
 * Deepest message a service may send (the message object is level 1). A deeper one is invalid
 * output: the node, the gateways and most clients' JSON encoders recurse per level, and a few
 * thousand levels overflow their stacks (docs/task-protocol.md#invalid-output).
 */
export const MAX_SERVICE_MESSAGE_DEPTH = 256;

/** Why the node tells a service that a client left. */
export type LeaveReason = "left" | "disconnected" | "kicked";

/** node -> service */
export type NodeToService =
  | { type: "start"; instance: string; task: string; args: Record<string, unknown> }
  | { type: "join"; client: string; user: string | null; data: unknown }
  | { type: "message"; client: string; action: string; data: unknown; channel?: string }
  | { type: "leave"; client: string; reason: LeaveReason }
  | { type: "shutdown"; deadlineMs: number };

const Client = Type.String({ minLength: 1, maxLength: 128 });
const Action = Type.String({ minLength: 1, maxLength: 256 });

const schemas = {
  ready: Type.Object({ type: Type.Literal("ready") }),
  accept: Type.Object({ type: Type.Literal("accept"), client: Client }),
  reject: Type.Object({
    type: Type.Literal("reject"),
    client: Client,
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
  }),
  send: Type.Object({
    type: Type.Literal("send"),
    to: Type.Optional(Type.Array(Client)),
    action: Action,
    data: Type.Optional(Type.Unknown()),
    channel: Type.Optional(Type.String({ maxLength: 256 })),
  }),
  kick: Type.Object({
    type: Type.Literal("kick"),
    client: Client,
    reason: Type.Optional(Type.String({ maxLength: 1024 })),
  }),
  stop: Type.Object({ type: Type.Literal("stop") }),
  heartbeat: Type.Object({ type: Type.Literal("heartbeat") }),
} satisfies Record<string, TSchema>;

/** service -> node */
export type ServiceToNode = { [K in keyof typeof schemas]: Static<(typeof schemas)[K]> }[keyof typeof schemas];

const validators: Record<ServiceToNode["type"], Validator<TSchema>> = {
  ready: compile(schemas.ready),
  accept: compile(schemas.accept),
  reject: compile(schemas.reject),
  send: compile(schemas.send),
  kick: compile(schemas.kick),
  stop: compile(schemas.stop),
  heartbeat: compile(schemas.heartbeat),
};

/** The result of checking one message from a service. */
export type ParsedServiceMessage = { ok: true; message: ServiceToNode } | { ok: false; problem: string };

/** Checks a value a service sent (already decoded from IPC or from one stdout line). */
export function checkServiceMessage(value: unknown): ParsedServiceMessage {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    return { ok: false, problem: "message must be a JSON object" };
  }
  const type = (value as { type?: unknown }).type;
  const validator = typeof type === "string" && Object.hasOwn(validators, type) ? validators[type as ServiceToNode["type"]] : undefined;
  // Stringified for the problem text only once known to be shallow (a string or a number, or not).
  if (!validator) return { ok: false, problem: `unknown message type ${typeof type === "string" ? JSON.stringify(type.slice(0, 64)) : typeof type}` };
  if (valueTooDeep(value, MAX_SERVICE_MESSAGE_DEPTH)) return { ok: false, problem: `${String(type)}: nested deeper than ${MAX_SERVICE_MESSAGE_DEPTH} levels` };
  const problem = validator.explain(value);
  return problem === null ? { ok: true, message: value as ServiceToNode } : { ok: false, problem: `${String(type)}: ${problem}` };
}
