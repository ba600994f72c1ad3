/**
 * Creating Redis connections the same way in every role, and the startup check that turns
 * "no Redis" into a message saying what to do.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { ServmanError } from "./errors.js";
import { TickCorkedRedis } from "./tick-corked-redis.js";

/** How long a command may wait for Redis before it fails (non-blocking connections). */
export const COMMAND_TIMEOUT_MS = 5_000;

/** Options every Servman connection shares. */
export interface ConnectionOptions {
  /** Shown in `CLIENT LIST` and in logs: `servman:<role>`. */
  name: string;
  logger?: Logger;
  /** BullMQ workers and subscribers need commands to wait for a reconnect instead of failing. */
  blocking?: boolean;
}

/** Opens a connection to `url`; errors are logged (once per distinct message), never thrown. */
export function createRedis(url: string, options: ConnectionOptions): Redis {
  const redisOptions: RedisOptions & { replyMapping?: "legacy" } = {
    connectionName: options.name.replaceAll(/[^A-Za-z0-9_.:-]/g, "_"),
    maxRetriesPerRequest: options.blocking ? null : 2,
    // A request must fail (unavailable) rather than hang while Redis does not answer.
    ...(options.blocking ? {} : { commandTimeout: COMMAND_TIMEOUT_MS }),
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2_000),
  };
  // Connections that publish on the hot path send each tick's commands in one write.
  const redis = options.blocking ? new Redis(url, redisOptions) : new TickCorkedRedis(url, redisOptions);
  let lastError = "";
  redis.on("error", (err: Error) => {
    if (err.message !== lastError) options.logger?.warn({ err: err.message, connection: options.name }, "redis connection error");
    lastError = err.message;
  });
  redis.on("ready", () => {
    if (lastError !== "") options.logger?.info({ connection: options.name }, "redis connection restored");
    lastError = "";
  });
  return redis;
}

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (scheme === undefined) return url;
  // The password may itself contain "@": the host starts after the last one.
  const at = url.lastIndexOf("@");
  if (at < scheme.length) return url;
  const userinfo = url.slice(scheme.length, at);
  const colon = userinfo.indexOf(":");
  // Without a colon the one word may be a password (some clients read it so): hide it all.
  return `${scheme}${colon === -1 ? "" : userinfo.slice(0, colon)}:***${url.slice(at)}`;
}

/**
 * Checks that a Redis server answers at `url` within `timeoutMs`. Throws `unavailable` with the
 * fix in its message: the first thing a new user sees when they forgot to start Redis.
 */
export async function checkRedis(url: string, timeoutMs = 3_000): Promise<void> {
  const shown = redactUrl(url);
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs });
  let lastError: Error | undefined;
  redis.on("error", (err: Error) => (lastError = err));
  try {
    await redis.connect();
    const info = await redis.info("server");
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
      throw new ServmanError("unavailable", `Redis at ${shown} is ${version[1]}.${version[2]}; Servman needs Redis 6.2 or newer.`);
    }
  } catch (err) {
    if (err instanceof ServmanError) throw err;
    const reason = (err instanceof Error && /WRONGPASS|NOAUTH|NOPERM/.test(err.message) ? err.message : undefined) ?? lastError?.message ?? (err instanceof Error ? err.message : String(err));
    if (/WRONGPASS|NOAUTH|NOPERM|invalid password/i.test(reason)) {
      throw new ServmanError("unavailable", `Redis at ${shown} refused the credentials (${reason}). Check the user and password in the URL: rediss://USER:PASSWORD@HOST:PORT`, { cause: err });
    }
    if (/certificate|self.signed|SSL|TLS/i.test(reason)) {
      throw new ServmanError(
        "unavailable",
        `TLS to Redis at ${shown} failed (${reason}). If the server's certificate comes from a private CA, give Node the CA: NODE_EXTRA_CA_CERTS=/path/to/ca.pem`,
        { cause: err },
      );
    }
    throw new ServmanError(
      "unavailable",
      [
        `No Redis answers at ${shown} (${reason}).`,
        "Servman keeps its queue and registry in Redis. Either:",
        "  - start one here:         redis-server --port 6379 --save '' --appendonly no",
        "  - or with Docker:         docker compose up -d redis",
        "  - or point at yours:      --redis redis://HOST:PORT  (or SERVMAN_REDIS_URL)",
      ].join("\n"),
      { cause: err },
    );
  } finally {
    redis.disconnect();
  }
}
