/**
 * The fast path of the commonest message on a gateway's channel, a node's `fanout`
 * (bus-messages.ts): read in the one form a node writes it, `JSON.stringify` of its head with the
 * event spliced in last, without parsing the head. A message in any other form (another type or
 * version, escapes, other keys or key order, numbers not plain) is left to the slow path
 * (`splitEvent` and `decodeToGateway` in bus-parse.ts), which handles it as before; what this
 * takes, the slow path takes too, with the same fields (test/unit-fanout-scan.test.ts).
 */
import { FANOUT_PREFIX, EVENT_KEY } from "./bus-messages.js";
import { lastStringEscaped, scanString } from "./json-scan.js";

/** A fanout read by the fast path: its head's fields, and its event as text. */
export interface ScannedFanout {
  instance: string;
  seq: number;
  sessions: string[];
  prev: number;
  run: string;
  /** The event, JSON text as the node wrote it. */
  event: string;
}

/** Longest id the bus takes (bus-parse.ts), and most sessions in one fanout. */
const MAX_ID = 256;
const MAX_SESSIONS = 1_000_000;

const INSTANCE_KEY = `${FANOUT_PREFIX},"instance":`;
const SEQ_KEY = ',"seq":';
const SESSIONS_KEY = ',"sessions":[';
const PREV_KEY = ',"prev":';
const RUN_KEY = ',"run":';

/** End of the plain string (no escape, 1 to MAX_ID long) at `at`, or -1. */
function id(text: string, at: number): number {
  if (text.charCodeAt(at) !== 0x22) return -1;
  const end = scanString(text, at, true);
  return end < 0 || lastStringEscaped() || end - at - 2 < 1 || end - at - 2 > MAX_ID ? -1 : end;
}

/** End of the count at `at`, written as JSON.stringify writes a safe integer of up to 15 digits, or -1. */
function count(text: string, at: number): number {
  let i = at;
  while (i - at < 16) {
    const c = text.charCodeAt(i);
    if (c < 0x30 || c > 0x39) break;
    i++;
  }
  const digits = i - at;
  if (digits === 0 || digits > 15 || (digits > 1 && text.charCodeAt(at) === 0x30)) return -1;
  return i;
}

/** Reads `payload` as a fanout in the form nodes write; null when the slow path must read it. */
export function scanFanout(payload: string): ScannedFanout | null {
  if (!payload.startsWith(INSTANCE_KEY) || payload.charCodeAt(payload.length - 1) !== 0x7d /* } */) return null;
  let i = INSTANCE_KEY.length;
  let end = id(payload, i);
  if (end < 0 || !payload.startsWith(SEQ_KEY, end)) return null;
  const instance = payload.slice(i + 1, end - 1);
  i = end + SEQ_KEY.length;
  end = count(payload, i);
  if (end < 0 || !payload.startsWith(SESSIONS_KEY, end)) return null;
  const seq = Number(payload.slice(i, end));
  i = end + SESSIONS_KEY.length;
  const sessions: string[] = [];
  for (;;) {
    end = id(payload, i);
    if (end < 0 || sessions.length === MAX_SESSIONS) return null;
    sessions.push(payload.slice(i + 1, end - 1));
    const next = payload.charCodeAt(end);
    i = end + 1;
    if (next === 0x5d /* ] */) break;
    if (next !== 0x2c /* , */) return null;
  }
  if (!payload.startsWith(PREV_KEY, i)) return null;
  i += PREV_KEY.length;
  end = count(payload, i);
  if (end < 0 || !payload.startsWith(RUN_KEY, end)) return null;
  const prev = Number(payload.slice(i, end));
  i = end + RUN_KEY.length;
  end = id(payload, i);
  if (end < 0 || !payload.startsWith(EVENT_KEY, end)) return null;
  const run = payload.slice(i + 1, end - 1);
  const event = payload.slice(end + EVENT_KEY.length, -1);
  return { instance, seq, sessions, prev, run, event };
}
