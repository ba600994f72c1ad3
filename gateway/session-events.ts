/**
 * What a session does with each event of its channel (docs/redis.md, `ToSession`): while its
 * client is connected, forward it or settle a join; while it detaches, keep it in the tail for
 * whoever resumes the session. Pass-through `message` events are never parsed.
 */
import { ServmanError } from "../src/errors.js";
import { MESSAGE_PREFIX, type ToSession } from "../src/protocol/bus-messages.js";
import { decodeToSession } from "../src/protocol/bus-parse.js";
import type { ServerFrame } from "../src/protocol/client-messages.js";
import type { SessionJoins } from "./session-joins.js";
import type { SessionMembership } from "./session-membership.js";
import type { SessionTail } from "./session-tail.js";

/** The parts of a session its events act on. */
export interface SessionEventTarget {
  joins: Pick<SessionJoins, "settle">;
  membership: Pick<SessionMembership, "forgetJoined" | "forgetCloseOnLeave">;
  send(frame: ServerFrame): void;
  sendRaw(text: string): void;
  /** Another connection resumed the session: this one lets it go (as a dropped connection). */
  taken(): void;
  /** An event without the shape of one: logged and counted, then dropped. */
  bad(problem: string): void;
}

function decode(s: SessionEventTarget, payload: string): ToSession | null {
  const decoded = decodeToSession(payload);
  if (decoded.ok) return decoded.message;
  s.bad(decoded.problem);
  return null;
}

/** Handles one event while the session's client is connected. */
export function handleSessionEvent(s: SessionEventTarget, payload: string): void {
  if (payload.startsWith(MESSAGE_PREFIX)) return s.sendRaw(payload);
  const event = decode(s, payload);
  if (!event) return;
  switch (event.type) {
    case "joined":
      s.joins.settle(event.instance, null);
      break;
    case "join_rejected":
      s.joins.settle(event.instance, new ServmanError("join_rejected", event.reason));
      break;
    case "closed":
      s.membership.forgetJoined(event.instance);
      s.membership.forgetCloseOnLeave(event.instance);
      s.send({ type: "closed", instance: event.instance, reason: event.reason });
      break;
    case "takeover":
      s.taken();
      break;
    // A node's answer to a resume that came after its resume was over: nothing to do.
    case "resume_answer":
      break;
    case "alert":
    case "restarting":
    case "restarted":
    case "dropped":
      s.send(event);
      break;
    default:
      break;
  }
}

/** An event that came after the client left, kept for the connection that resumes the session. */
export function keepInTail(s: SessionEventTarget, tail: SessionTail, payload: string): void {
  // The tail spans one unsubscribe round trip; a flood past this bound is counted (`dropped`), not kept.
  if (tail.full) return tail.overflow(payload);
  if (payload.startsWith(MESSAGE_PREFIX)) return void tail.push(payload);
  const event = decode(s, payload);
  if (!event) return;
  if (event.type === "takeover" || event.type === "joined" || event.type === "join_rejected" || event.type === "replay" || event.type === "resume_answer") return;
  if (event.type === "closed") {
    s.membership.forgetJoined(event.instance);
    s.membership.forgetCloseOnLeave(event.instance);
  }
  tail.push(payload);
}
