/**
 * One WebSocket of the client SDK: opened, its `welcome` read, then every other frame parsed and
 * handed on, and its close reported (servman-client.ts decides what a close means).
 */
import { ServmanError } from "../errors.js";
import type { WebSocketConstructor, WebSocketLike } from "./client-options.js";

/** The gateway's first frame on a connection (docs/protocol.md#welcome). */
export interface Welcome {
  session: string;
  resume: string;
  gateway: string;
  /** What the gateway adds to the v1 protocol (`send-seq`); empty from earlier versions. */
  features: string[];
}

/** Where a connection's life goes once it was welcomed. */
export interface ConnectionHandlers {
  /** The welcome came: `ws` is ready for requests (called before the promise settles). */
  welcomed(ws: WebSocketLike): void;
  frame(frame: Record<string, unknown>): void;
  /** The connection closed after its welcome. */
  closed(ws: WebSocketLike, code: number, reason: string): void;
}

/** Opens a WebSocket to `url`; resolves with its welcome, rejects `unavailable` if it ends first. */
export function openConnection(Ctor: WebSocketConstructor, url: string, on: ConnectionHandlers): Promise<Welcome> {
  const ws = new Ctor(url);
  return new Promise((resolve, reject) => {
    let welcomed = false;
    ws.addEventListener("message", (event: { data: unknown }) => {
      if (typeof event.data !== "string") return;
      let frame: Record<string, unknown>;
      try {
        frame = JSON.parse(event.data) as Record<string, unknown>;
      } catch {
        return;
      }
      if (!welcomed && frame.type === "welcome") {
        welcomed = true;
        on.welcomed(ws);
        const features = Array.isArray(frame.features) ? frame.features.map(String) : [];
        resolve({ session: String(frame.session), resume: String(frame.resume), gateway: String(frame.gateway), features });
        return;
      }
      on.frame(frame);
    });
    ws.addEventListener("error", () => {
      if (!welcomed) reject(new ServmanError("unavailable", `could not connect to ${url}`));
    });
    ws.addEventListener("close", (event: { code: number; reason: string }) => {
      if (!welcomed) return reject(new ServmanError("unavailable", `connection to ${url} closed (${event.code})`));
      on.closed(ws, event.code, event.reason);
    });
  });
}
