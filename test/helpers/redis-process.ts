/**
 * Shared parts of the multi-server Redis helpers (redis-cluster.ts, redis-sentinel.ts): starting
 * one redis-server process we own, asking one server a command, and choosing free ports.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { own } from "./owned-processes.js";

/** True if `port` can be bound on 127.0.0.1 right now. */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/**
 * A port of 127.0.0.1 that is free now, and, with `bus`, whose cluster bus port (port + 10000)
 * is free too. Random in 20000-45000 so the bus port stays below 55536 and away from the
 * kernel's ephemeral range (32768-60999 takes part of it; a collision only costs a retry).
 */
export async function freePortPair(bus: boolean, taken: ReadonlySet<number> = new Set()): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 20000 + Math.floor(Math.random() * 25000);
    if (taken.has(port) || taken.has(port + 10000) || taken.has(port - 10000)) continue;
    if (!(await canListen(port))) continue;
    if (bus && !(await canListen(port + 10000))) continue;
    return port;
  }
  throw new Error("no free port found");
}

/** A server ended during startup: most likely another process took its port (or bus port) first. */
export class ServerExited extends Error {}

/** Throws `ServerExited` if one of `children` has ended. */
export function assertRunning(children: Iterable<ChildProcess>): void {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new ServerExited(`redis-server ${child.pid} exited during startup (${child.exitCode ?? child.signalCode})`);
    }
  }
}

/** Runs `start` again (new ports) when a server exited during startup, up to 3 times in all. */
export async function retryingStart<T>(start: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start();
    } catch (err) {
      if (!(err instanceof ServerExited) || attempt >= 3) throw err;
    }
  }
}

/** Starts `redis-server` with `args` (its log goes to `logFile`), owned so it never outlives us. */
export function spawnRedisServer(args: string[]): ChildProcess {
  const child = spawn("redis-server", args, { stdio: ["ignore", "ignore", "inherit"], detached: false });
  own(child);
  return child;
}

/** The last lines of a server's log file, for errors. */
export function logTail(logFile: string, lines = 15): string {
  try {
    return readFileSync(logFile, "utf8").trim().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

/**
 * Sends one command to the server on `port` over a fresh connection that never retries, so a dead
 * server fails fast. Used for topology questions (CLUSTER NODES, INFO, SENTINEL ...).
 */
export async function ask(port: number, password: string | undefined, command: string, ...args: (string | number)[]): Promise<unknown> {
  const redis = new Redis({
    host: "127.0.0.1",
    port,
    password,
    lazyConnect: true,
    connectTimeout: 1000,
    commandTimeout: 2000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
  });
  redis.on("error", () => {});
  try {
    await redis.connect();
    return await redis.call(command, ...args);
  } finally {
    redis.disconnect();
  }
}

/** `ask`, but undefined instead of an error (a dead or restarting server). */
export async function tryAsk(port: number, password: string | undefined, command: string, ...args: (string | number)[]): Promise<unknown> {
  try {
    return await ask(port, password, command, ...args);
  } catch {
    return undefined;
  }
}

/** Parses `INFO` text into field → value. */
export function parseInfo(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon > 0 && !line.startsWith("#")) out[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return out;
}

/** Polls `check` until it returns a value other than undefined; fails with `what` after `ms`. */
export async function pollFor<T>(check: () => Promise<T | undefined>, what: string, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
