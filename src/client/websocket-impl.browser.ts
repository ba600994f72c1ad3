/**
 * The WebSocket the client SDK uses by default in a browser (package.json `imports`, `browser`
 * condition): the page's own. Nothing here may import a Node module.
 */
import { ServmanError } from "../errors.js";
import type { WebSocketConstructor } from "./client-options.js";

export function defaultWebSocket(): Promise<WebSocketConstructor> {
  const native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (native) return Promise.resolve(native);
  return Promise.reject(new ServmanError("unavailable", "no global WebSocket here; pass the WebSocket option"));
}
