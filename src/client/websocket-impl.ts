/**
 * The WebSocket the client SDK uses by default, under Node: the global one (Node 22 and later),
 * else the `ws` package, loaded only then. Browsers and bundlers get websocket-impl.browser.ts
 * instead (package.json `imports`, `browser` condition), which never names `ws`.
 */
import type { WebSocketConstructor } from "./client-options.js";

export async function defaultWebSocket(): Promise<WebSocketConstructor> {
  const native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (native) return native;
  const ws = await import("ws");
  return ws.WebSocket;
}
