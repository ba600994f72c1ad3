/**
 * A real redis-server per test file, on a free port of 127.0.0.1, ended by PID when the file is
 * done. Tests never use the shared 127.0.0.1:6379.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";
import { Redis } from "ioredis";

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

async function waitForPing(url: string, child: ChildProcess): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
    const redis = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
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

/** Starts redis-server on a free port (retrying if another process takes the port first). */
export async function startRedis(): Promise<TestRedis> {
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const child = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"], {
      stdio: ["ignore", "ignore", "inherit"],
    });
    // Last resort if the test file dies before its after() hook: never leave a redis-server behind.
    const killOnExit = () => child.kill("SIGKILL");
    process.once("exit", killOnExit);
    try {
      const url = `redis://127.0.0.1:${port}`;
      await waitForPing(url, child);
      const client = new Redis(url);
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
