/**
 * A real redis-server per test file, on a free port of 127.0.0.1, ended by PID when the file is
 * done. Tests never use the shared 127.0.0.1:6379.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer } from "node:net";
import { Redis, type RedisOptions } from "ioredis";

export interface TestRedis {
  url: string;
  port: number;
  /** The server's current process (a new one after `up`). */
  pid: number;
  /** A plain connection for assertions (closed by stop; it reconnects after `up`). */
  client: Redis;
  /** Shuts the server down (SIGTERM): what it keeps depends on `persistence`. */
  down(): Promise<void>;
  /** Starts it again on the same port, after `down`; resolves once it answers. */
  up(): Promise<void>;
  stop(): Promise<void>;
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitForPing(url: string, child: ChildProcess, options: RedisOptions): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const redis = new Redis(url, { ...options, lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    redis.on("error", () => {});
    try {
      await redis.connect();
      await redis.ping();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    } finally {
      redis.disconnect();
    }
  }
  throw new Error("redis-server did not answer");
}

/** Variations for servers with passwords, ACL users or TLS. */
export interface RedisServerOptions {
  /**
   * Extra redis-server arguments; `{port}` is replaced by the chosen port, and when an argument
   * uses it the plain port is turned off (`--port 0`): for TLS-only servers (`--tls-port {port}`).
   */
  args?: string[];
  /** The URL clients use (default `redis://127.0.0.1:{port}`). */
  url?: (port: number) => string;
  /** ioredis options for the harness's own connections (TLS trust, say). */
  clientOptions?: RedisOptions;
  /**
   * Keep the data across `down`/`up` (an append-only file, synced on every write, in a temporary
   * folder). Default: none, so the server comes back empty.
   */
  persistence?: boolean;
}

/** Ends `child` (SIGTERM, so a persistent server writes its data first) and waits for it. */
async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  await exited;
}

/** Starts redis-server on a free port (retrying if another process takes the port first). */
export async function startRedis(options: RedisServerOptions = {}): Promise<TestRedis> {
  const dataDir = options.persistence ? mkdtempSync(join(tmpdir(), "servman-redis-")) : undefined;
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const tlsPort = (options.args ?? []).some((a) => a.includes("{port}"));
    const persistence = dataDir ? ["--appendonly", "yes", "--appendfsync", "always", "--dir", dataDir] : ["--appendonly", "no"];
    const args = [
      ...["--port", tlsPort ? "0" : String(port), "--bind", "127.0.0.1", "--save", "", ...persistence, "--loglevel", "warning"],
      ...(options.args ?? []).map((a) => a.replaceAll("{port}", String(port))),
    ];
    const spawnServer = () => spawn("redis-server", args, { stdio: ["ignore", "ignore", "inherit"] });
    let child = spawnServer();
    // Last resort if the test file dies before its after() hook: never leave a redis-server behind.
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    try {
      const url = options.url?.(port) ?? `redis://127.0.0.1:${port}`;
      await waitForPing(url, child, options.clientOptions ?? {});
      const client = new Redis(url, options.clientOptions ?? {});
      client.on("error", () => {});
      const redis: TestRedis = {
        url,
        port,
        pid: child.pid!,
        client,
        async down() {
          await terminate(child);
        },
        async up() {
          if (child.exitCode === null && child.signalCode === null) return;
          // The port was just ours; another process taking it meanwhile is not expected in a test.
          child = spawnServer();
          redis.pid = child.pid!;
          await waitForPing(url, child, options.clientOptions ?? {});
        },
        async stop() {
          client.disconnect();
          process.off("exit", killOnExit);
          await terminate(child);
          if (dataDir) rmSync(dataDir, { recursive: true, force: true });
        },
      };
      return redis;
    } catch (err) {
      child.kill("SIGKILL");
      if (attempt >= 4) throw err;
    }
  }
}
