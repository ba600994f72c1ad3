/**
 * A real redis-server per test file, on a free port of 127.0.0.1, ended by PID when the file is
 * done. Tests never use the shared 127.0.0.1:6379.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { Redis, type RedisOptions } from "ioredis";

export interface TestRedis {
  url: string;
  port: number;
  pid: number;
  /** A plain connection for assertions (closed by stop). */
  client: Redis;
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
}

/** Starts redis-server on a free port (retrying if another process takes the port first). */
export async function startRedis(options: RedisServerOptions = {}): Promise<TestRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const tlsPort = (options.args ?? []).some((a) => a.includes("{port}"));
    const base = ["--port", tlsPort ? "0" : String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"];
    const child = spawn("redis-server", [...base, ...(options.args ?? []).map((a) => a.replaceAll("{port}", String(port)))], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    // Last resort if the test file dies before its after() hook: never leave a redis-server behind.
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    try {
      const url = options.url?.(port) ?? `redis://127.0.0.1:${port}`;
      await waitForPing(url, child, options.clientOptions ?? {});
      const client = new Redis(url, options.clientOptions ?? {});
      return {
        url,
        port,
        pid: child.pid!,
        client,
        async stop() {
          client.disconnect();
          process.off("exit", killOnExit);
          if (child.exitCode !== null) return;
          const exited = new Promise((r) => child.once("exit", r));
          child.kill("SIGTERM");
          await exited;
        },
      };
    } catch (err) {
      child.kill("SIGKILL");
      if (attempt >= 4) throw err;
    }
  }
}
