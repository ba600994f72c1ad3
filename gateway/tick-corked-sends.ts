/**
 * A client connection whose frames of one event-loop turn leave in one socket write. A session that gets a
 * burst of events (a broadcast, a service's reply to several messages) would otherwise cost one
 * `writev` syscall per frame; ws writes each frame's header and payload together but never two
 * frames. The socket is corked from the first send of a turn to the end of the turn, and written
 * out early once 64 KiB are waiting, so `bufferedAmount` (the slow-consumer cut-off) only ever
 * counts that much more than the client has not yet been sent.
 */
import { Socket } from "node:net";
import type { WebSocket } from "ws";
import { corkUntilTurnEnd, flushPast } from "../src/tick-cork.js";

/** Corked output written out at once past this many bytes. */
const FLUSH_AT_BYTES = 64 * 1024;

/** Makes `ws.send` batch per event-loop turn. Call once, on a new connection. */
export function corkSendsPerTick(ws: WebSocket): void {
  // ws 8 keeps the connection's socket in `_socket` (a TLS socket is a net.Socket too). Without
  // one, sends stay unbatched.
  const socket = (ws as unknown as { _socket?: unknown })._socket;
  if (!(socket instanceof Socket)) return;
  const send = ws.send.bind(ws) as (data: unknown, options?: unknown, cb?: unknown) => void;
  // Fixed parameters rather than a rest array: one call per frame out.
  ws.send = function (data: unknown, options?: unknown, cb?: unknown): void {
    corkUntilTurnEnd(socket);
    send(data, options, cb);
    flushPast(socket, FLUSH_AT_BYTES);
  } as WebSocket["send"];
}
