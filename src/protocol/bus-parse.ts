/**
 * Decoding of the messages Servman processes exchange over Redis (bus-messages.ts). Only Servman
 * processes publish them, but a process must not die of one bad message whoever wrote it (a bug,
 * an old version, a person with `redis-cli`): each is checked by shape before use, and one that
 * does not fit is dropped, logged and counted by the caller. Pass-through `message` payloads
 * (MESSAGE_PREFIX) are not decoded at all on the hot path; they never reach these functions.
 */
import { Type, type TSchema } from "@sinclair/typebox";
import { EVENT_KEY, type ClusterEvent, type NodeCommand, type ToGateway, type ToInstance, type ToRequester, type ToSession } from "./bus-messages.js";
import { valueTooDeep } from "./json-depth.js";
import { compile, type Validator } from "./validate.js";

/**
 * Deepest bus message decoded: client data is at most gateway.limits.maxDepth (1000 at most)
 * deep, service data at most MAX_SERVICE_MESSAGE_DEPTH, plus a few levels of envelope. Anything
 * deeper was not written by a Servman process, and must not reach a recursive encoder.
 */
const MAX_BUS_DEPTH = 1_010;

const Id = Type.String({ minLength: 1, maxLength: 256 });
const Channel = Type.String({ minLength: 1, maxLength: 512 });
const Count = Type.Integer({ minimum: 0 });
const NullableString = Type.Union([Type.String(), Type.Null()]);
/** A fanout's sessions: at most an instance's members. */
const Sessions = Type.Array(Id, { minItems: 1, maxItems: 1_000_000 });

const toInstance = {
  message: Type.Object({ type: Type.Literal("message"), client: Id, seq: Type.Optional(Count), action: Type.String(), channel: Type.Optional(Type.String()) }),
  join: Type.Object({ type: Type.Literal("join"), client: Id, user: NullableString, reply: Channel, gateway: Type.Optional(Id) }),
  leave: Type.Object({ type: Type.Literal("leave"), client: Id, reason: Type.Union([Type.Literal("left"), Type.Literal("disconnected"), Type.Literal("kicked")]) }),
  stop: Type.Object({ type: Type.Literal("stop"), by: NullableString, reply: Type.Union([Channel, Type.Null()]) }),
  resume: Type.Object({ type: Type.Literal("resume"), client: Id, reply: Channel, gateway: Type.Optional(Id), answer: Type.Optional(Type.Boolean()) }),
  ack: Type.Object({ type: Type.Literal("ack"), client: Id, through: Count }),
  undelivered: Type.Object({ type: Type.Literal("undelivered"), seq: Count, sessions: Sessions, event: Type.Object({ type: Type.String() }) }),
  flushed: Type.Object({ type: Type.Literal("flushed"), client: Id, id: Count }),
  gap: Type.Object({ type: Type.Literal("gap"), gateway: Id, run: Id, after: Count, through: Count }),
} satisfies Record<ToInstance["type"], TSchema>;

/** A `fanout` is decoded without its event (splitEvent): the event is passed on as text. */
const toGateway = {
  fanout: Type.Object({ type: Type.Literal("fanout"), instance: Id, seq: Count, sessions: Sessions, prev: Type.Optional(Count), run: Type.Optional(Id) }),
  barrier: Type.Object({ type: Type.Literal("barrier"), instance: Id, client: Id, id: Count }),
  rewind: Type.Object({ type: Type.Literal("rewind"), instance: Id, sessions: Sessions }),
  skip: Type.Object({ type: Type.Literal("skip"), instance: Id, run: Id, seq: Count, prev: Count }),
} satisfies Record<ToGateway["type"], TSchema>;

const Event = Type.Object({ type: Type.String() });
const toSession = {
  message: Type.Object({ type: Type.Literal("message"), instance: Id, action: Type.String() }),
  joined: Type.Object({ type: Type.Literal("joined"), instance: Id }),
  join_rejected: Type.Object({ type: Type.Literal("join_rejected"), instance: Id, reason: Type.String() }),
  closed: Type.Object({ type: Type.Literal("closed"), instance: Id, reason: Type.String() }),
  restarting: Type.Object({ type: Type.Literal("restarting"), instance: Id }),
  restarted: Type.Object({ type: Type.Literal("restarted"), instance: Id }),
  dropped: Type.Object({ type: Type.Literal("dropped"), instance: Id, count: Count }),
  alert: Type.Object({ type: Type.Literal("alert"), instance: Id }),
  replay: Type.Object({
    type: Type.Literal("replay"),
    instance: Id,
    member: Type.Boolean(),
    dropped: Count,
    through: Count,
    events: Type.Array(Event),
    seqs: Type.Optional(Type.Array(Count)),
    run: Type.Optional(Id),
  }),
  takeover: Type.Object({ type: Type.Literal("takeover"), gateway: Type.String() }),
  resume_answer: Type.Object({ type: Type.Literal("resume_answer"), instance: Id, received: Count }),
} satisfies Record<ToSession["type"], TSchema>;

const toRequester = {
  launched: Type.Object({
    type: Type.Literal("launched"),
    instance: Id,
    node: Id,
    token: Type.String(),
    joined: Type.Optional(Type.Boolean()),
    reason: Type.Optional(Type.String()),
  }),
  launch_error: Type.Object({ type: Type.Literal("launch_error"), instance: Id, token: Type.String(), code: Type.String(), message: Type.String() }),
  stopping: Type.Object({ type: Type.Literal("stopping"), instance: Id, deadlineMs: Count }),
  stopped: Type.Object({ type: Type.Literal("stopped"), instance: Id }),
} satisfies Record<ToRequester["type"], TSchema>;

const nodeCommand = {
  drain: Type.Object({ type: Type.Literal("drain"), deadlineMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })) }),
} satisfies Record<NodeCommand["type"], TSchema>;

const clusterEvent = {
  lost: Type.Object({ type: Type.Literal("lost"), instance: Id, node: Id }),
} satisfies Record<ClusterEvent["type"], TSchema>;

/** The outcome of decoding one bus payload: the message, or why it was refused. */
export type BusParse<T> = { ok: true; message: T } | { ok: false; problem: string };

/** A decoder for one family of bus messages. */
export type BusDecoder<T> = (payload: string) => BusParse<T>;

function decoder<T>(family: string, schemas: Record<string, TSchema>): BusDecoder<T> {
  const validators = new Map<string, Validator<TSchema>>(Object.entries(schemas).map(([type, schema]) => [type, compile(schema)]));
  return (payload) => {
    let value: unknown;
    try {
      value = JSON.parse(payload);
    } catch {
      return { ok: false, problem: `${family}: not JSON` };
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) return { ok: false, problem: `${family}: not a JSON object` };
    if (valueTooDeep(value, MAX_BUS_DEPTH)) return { ok: false, problem: `${family}: nested deeper than ${MAX_BUS_DEPTH} levels` };
    const type = (value as { type?: unknown }).type;
    const validator = typeof type === "string" ? validators.get(type) : undefined;
    if (!validator) return { ok: false, problem: `${family}: unknown type ${JSON.stringify(type)?.slice(0, 64)}` };
    const problem = validator.explain(value);
    return problem === null ? { ok: true, message: value as T } : { ok: false, problem: `${family} ${String(type)}: ${problem}` };
  };
}

/** Decodes a payload published on an instance channel (to a node). */
export const decodeToInstance: BusDecoder<ToInstance> = decoder("instance channel", toInstance);
/** Decodes a payload published on a session channel (to the gateway holding the session). */
export const decodeToSession: BusDecoder<ToSession> = decoder("session channel", toSession);
/** Decodes a payload published on a gateway's channel (a fanout's head, or a barrier). */
export const decodeToGateway: BusDecoder<ToGateway> = decoder("gateway channel", toGateway);

/**
 * Splits a message written with its event last (`fanout`, FANOUT_PREFIX) into its head, as a
 * JSON object of its own, and the event's text, without parsing the event. Null if it has no
 * event key. The head's strings are ids and cannot hold the key, so its first occurrence is it.
 */
export function splitEvent(payload: string): { head: string; event: string } | null {
  const at = payload.indexOf(EVENT_KEY);
  if (at < 0 || !payload.endsWith("}")) return null;
  return { head: `${payload.slice(0, at)}}`, event: payload.slice(at + EVENT_KEY.length, -1) };
}

/** Decodes a payload published on a reply channel (to a gateway, node or Launcher). */
export const decodeToRequester: BusDecoder<ToRequester> = decoder("reply channel", toRequester);
/** Decodes a payload published on a node's control channel. */
export const decodeNodeCommand: BusDecoder<NodeCommand> = decoder("node control channel", nodeCommand);
/** Decodes a payload published on the cluster events channel. */
export const decodeClusterEvent: BusDecoder<ClusterEvent> = decoder("events channel", clusterEvent);
