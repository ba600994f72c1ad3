/**
 * The fast path of the commonest client frame, `send` (docs/protocol.md): read once, without
 * building its value, and turned into the task protocol's `message` by splicing the frame's own
 * text of `action`, `data` and `channel` (json-scan.ts). It takes only frames it can vouch for,
 * and the slow path (client-messages.ts: parse, check, encode) takes every other one, so a frame
 * is answered exactly as before:
 *
 * - what it takes, `parseClientFrame` accepts as a valid `send` with the same fields, and the
 *   message it makes is byte for byte `JSON.stringify` of the one the slow path builds;
 * - it refuses nothing itself: a frame it cannot vouch for (invalid, too deep, another type, a
 *   key written with an escape, a repeated key, text not in canonical form) is left to the slow
 *   path, which answers it as it always has.
 *
 * test/unit-send-frame.test.ts checks both against the slow path on hostile and random frames.
 */
import { NAME_PATTERN } from "../names.js";
import type { RequestId } from "./client-messages.js";
import { lastStringEscaped, scanNumber, scanString, scanValue, skipWhitespace } from "./json-scan.js";

/** A `send` frame read by the fast path. */
export interface ScannedSend {
  instance: string;
  id: RequestId | undefined;
  ack: boolean;
  /** JSON text of `action` (a string). */
  action: string;
  /** JSON text of `data` (`null` when the frame has none). */
  data: string;
  /** JSON text of `channel` (a string), if the frame has one. */
  channel: string | undefined;
  /** The client's number for this send (docs/protocol.md#numbered-sends), if the frame has one. */
  seq: number | undefined;
}

/** Longest `action`, `channel` and string `id` the schema takes (SendRequestSchema). */
const MAX_ACTION = 256;
const MAX_CHANNEL = 256;
const MAX_ID = 128;

// Bits of the known keys seen, so that a repeat is left to the slow path (parsing keeps the last).
const TYPE = 1;
const ID = 2;
const INSTANCE = 4;
const ACTION = 8;
const DATA = 16;
const CHANNEL = 32;
const ACK = 64;
const SEQ = 128;

function bitOf(key: string): number {
  switch (key) {
    case "type":
      return TYPE;
    case "id":
      return ID;
    case "instance":
      return INSTANCE;
    case "action":
      return ACTION;
    case "data":
      return DATA;
    case "channel":
      return CHANNEL;
    case "ack":
      return ACK;
    case "seq":
      return SEQ;
    default:
      return 0;
  }
}

/**
 * Reads `text` as a `send` frame nested at most `maxDepth` deep (the frame object is level 1).
 * Null when the fast path cannot vouch for it: then the slow path must handle the frame.
 */
export function scanSendFrame(text: string, maxDepth: number): ScannedSend | null {
  let i = skipWhitespace(text, 0);
  if (text.charCodeAt(i) !== 0x7b /* { */ || maxDepth < 1) return null;
  i = skipWhitespace(text, i + 1);
  let seen = 0;
  let instance = "";
  let id: RequestId | undefined;
  let ack = false;
  let action = "";
  let data = "null";
  let channel: string | undefined;
  let seq: number | undefined;
  if (text.charCodeAt(i) === 0x7d /* } */) return null;
  for (;;) {
    // The key: one written with an escape could be any of ours, so it is left to the slow path.
    if (text.charCodeAt(i) !== 0x22) return null;
    const keyEnd = scanString(text, i, false);
    if (keyEnd < 0 || lastStringEscaped()) return null;
    const bit = bitOf(text.slice(i + 1, keyEnd - 1));
    if ((seen & bit) !== 0) return null;
    seen |= bit;
    i = skipWhitespace(text, keyEnd);
    if (text.charCodeAt(i) !== 0x3a /* : */) return null;
    const start = skipWhitespace(text, i + 1);
    const first = text.charCodeAt(start);
    let end: number;
    if (bit === 0) {
      // A key the protocol does not know (forward compatibility): valid JSON, not too deep.
      end = scanValue(text, start, 2, maxDepth, false);
    } else if (bit === DATA) {
      end = scanValue(text, start, 2, maxDepth, true);
      if (end >= 0) data = text.slice(start, end);
    } else if (bit === ACK) {
      end = text.startsWith("true", start) ? start + 4 : text.startsWith("false", start) ? start + 5 : -1;
      ack = end === start + 4;
    } else if (bit === SEQ) {
      // An integer from 1 (SendRequestSchema); written again from its value, as JSON.stringify would.
      end = scanNumber(text, start, false);
      if (end >= 0) {
        seq = Number(text.slice(start, end));
        if (!Number.isSafeInteger(seq) || seq < 1) return null;
      }
    } else if (bit === ID && first !== 0x22) {
      end = scanNumber(text, start, false);
      if (end >= 0) {
        id = Number(text.slice(start, end));
        if (!Number.isFinite(id)) return null;
      }
    } else {
      // The rest are strings, taken only as plain text: no escapes, so text and value are one.
      if (first !== 0x22) return null;
      end = scanString(text, start, true);
      if (end < 0 || lastStringEscaped()) return null;
      const value = text.slice(start + 1, end - 1);
      if (bit === TYPE) {
        if (value !== "send") return null;
      } else if (bit === ID) {
        if (value.length > MAX_ID) return null;
        id = value;
      } else if (bit === INSTANCE) {
        if (!NAME_PATTERN.test(value)) return null;
        instance = value;
      } else if (bit === ACTION) {
        if (value.length < 1 || value.length > MAX_ACTION) return null;
        action = text.slice(start, end);
      } else {
        if (value.length > MAX_CHANNEL) return null;
        channel = text.slice(start, end);
      }
    }
    if (end < 0) return null;
    i = skipWhitespace(text, end);
    const next = text.charCodeAt(i);
    if (next === 0x7d /* } */) break;
    if (next !== 0x2c /* , */) return null;
    i = skipWhitespace(text, i + 1);
  }
  if (skipWhitespace(text, i + 1) !== text.length) return null;
  if ((seen & (TYPE | INSTANCE | ACTION)) !== (TYPE | INSTANCE | ACTION)) return null;
  return { instance, id, ack, action, data, channel, seq };
}

/**
 * The task protocol's `message` for a scanned `send` from session `client`: the same text as
 * `JSON.stringify` of the message the slow path builds (session.ts, `onSend`).
 */
export function sendMessageText(client: string, send: ScannedSend): string {
  const channel = send.channel === undefined ? "" : `,"channel":${send.channel}`;
  const seq = send.seq === undefined ? "" : `,"seq":${send.seq}`;
  return `{"type":"message","client":${JSON.stringify(client)}${seq},"action":${send.action},"data":${send.data}${channel}}`;
}
