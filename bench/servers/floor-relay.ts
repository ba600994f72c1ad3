/**
 * The relay floor: Servman's chain (client -> gateway -> Redis -> node -> instance and back) built
 * from raw `ws`, raw ioredis pub/sub and raw Node IPC, with no Servman code. Deliberately naive:
 * no batching, no auto-pipelining, one publish per message. A gateway half and a node half share
 * this process, as in `servman start`, each with its own publisher and subscriber connections.
 *
 * Routing is the least a relay can do: the gateway prefixes the session id (`<sid>|<frame>`),
 * the child echoes the string, the node splits it off and publishes the rest to that session.
 *
 * With `command`, the children are spawned without IPC and the node half speaks NDJSON on their
 * stdin/stdout instead (one write per message, lines split as they come), as a `command` task.
 *
 * Usage (forked by the relay benchmark): floor-relay.js <redis-url> <instances> [module|command]
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import { Redis } from "ioredis";
import { WebSocketServer, type RawData, type WebSocket } from "ws";
import { RAW_ECHO_CHILD } from "../lib/paths.js";
import { reportReady, serveRequests } from "../lib/script-side.js";

const [redisUrl, countArg, kind = "module"] = process.argv.slice(2);
const instances = Number(countArg ?? 1);
const overStdio = kind === "command";
const ignore = () => {};

// Node half.
const nodePub = new Redis(redisUrl);
const nodeSub = new Redis(redisUrl);
const children: ChildProcess[] = [];
const childByChannel = new Map<string, (payload: string) => void>();
nodeSub.on("message", (channel: string, payload: string) => {
  childByChannel.get(channel)?.(payload);
});

/** Echo children: forked with IPC, or spawned with stdio pipes (`command`). */
function spawnChild(): ChildProcess {
  // detached, as a Servman node forks: with autogroup scheduling a new session is its own
  // scheduling group, which changes the CPU share the child gets on a busy machine.
  return overStdio
    ? spawn(process.execPath, [RAW_ECHO_CHILD], { stdio: ["pipe", "pipe", "inherit"], detached: true })
    : fork(RAW_ECHO_CHILD, [], { stdio: ["ignore", "ignore", "inherit", "ipc"], detached: true });
}

async function startChild(k: number): Promise<void> {
  const child = spawnChild();
  children.push(child);
  const onEcho = (message: string) => {
    const bar = message.indexOf("|");
    nodePub.publish(`floor:to-session:${message.slice(0, bar)}`, message.slice(bar + 1)).catch(ignore);
  };
  const lines = overStdio ? createInterface({ input: child.stdout!, crlfDelay: Infinity }) : undefined;
  await new Promise<void>((resolve, reject) => {
    if (lines) lines.once("line", () => resolve());
    else child.once("message", () => resolve());
    child.once("exit", (code) => reject(new Error(`raw echo child exited with ${code}`)));
  });
  if (lines) lines.on("line", onEcho);
  else child.on("message", onEcho);
  const channel = `floor:to-instance:${k}`;
  await nodeSub.subscribe(channel);
  childByChannel.set(channel, lines ? (payload) => child.stdin!.write(payload + "\n") : (payload) => child.send(payload));
}

// Gateway half.
const gwPub = new Redis(redisUrl);
const gwSub = new Redis(redisUrl);
const sessions = new Map<string, WebSocket>();
gwSub.on("message", (channel: string, payload: string) => {
  sessions.get(channel)?.send(payload);
});
let nextSession = 0;
const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
wss.on("connection", (ws, req) => {
  const k = Number(new URL(req.url ?? "/", "http://floor").searchParams.get("i") ?? 0) % instances;
  const sid = String(nextSession++);
  const channel = `floor:to-session:${sid}`;
  const target = `floor:to-instance:${k}`;
  sessions.set(channel, ws);
  ws.on("error", ignore);
  ws.on("message", (data: RawData) => {
    gwPub.publish(target, `${sid}|${data.toString()}`).catch(ignore);
  });
  ws.on("close", () => {
    sessions.delete(channel);
    gwSub.unsubscribe(channel).catch(ignore);
  });
  // The greeting plays the part of Servman's welcome: the client may send once it arrived.
  gwSub.subscribe(channel).then(
    () => ws.send("ok"),
    () => ws.close(1011),
  );
});

await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
for (let k = 0; k < instances; k++) await startChild(k);
const { port } = wss.address() as { port: number };

serveRequests({}, async () => {
  for (const ws of wss.clients) ws.terminate();
  await new Promise<void>((resolve) => wss.close(() => resolve()));
  const exits = children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))));
  for (const c of children) c.kill("SIGKILL");
  await Promise.all(exits);
  for (const r of [nodePub, nodeSub, gwPub, gwSub]) r.disconnect();
});
reportReady({ url: `ws://127.0.0.1:${port}/`, pids: children.map((c) => c.pid) });
