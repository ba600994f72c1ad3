/**
 * The connections floor: a bare `ws` server that accepts WebSocket connections and holds them,
 * nothing else. Run in its own process so its RSS can be compared with a Servman gateway's.
 */
import { WebSocketServer } from "ws";
import { reportReady, serveRequests } from "../lib/script-side.js";

const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("error", () => {});
});
await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
const { port } = wss.address() as { port: number };

serveRequests({ count: () => wss.clients.size }, async () => {
  for (const ws of wss.clients) ws.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
});
reportReady({ url: `ws://127.0.0.1:${port}/` });
