/**
 * Creating Redis connections the same way in every role, and the startup check that turns
 * "no Redis" into a message saying what to do.
 */
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { ConfigError, ServmanError } from "./errors.js";
import { describeRedis, type RedisTarget } from "./config/redis-target.js";
import { TickCorkedRedis } from "./tick-corked-redis.js";

/** How long a command may wait for Redis before it fails (non-blocking connections). */
const COMMAND_TIMEOUT_MS = 5_000;

/** Options every Servman connection shares. */
export interface ConnectionOptions {
  /** Shown in `CLIENT LIST` and in logs: `servman:<role>`. */
  name: string;
  logger?: Logger;
  /** BullMQ workers and subscribers need commands to wait for a reconnect instead of failing. */
  blocking?: boolean;
}

/**
 * ioredis options for `target` beyond the common ones: a Sentinel-found master is a `Redis`
 * built from options rather than a URL.
 */
function targetOptions(target: RedisTarget): RedisOptions {
  if (target.kind !== "sentinel") return {};
  return {
    sentinels: target.sentinels.map(({ host, port }) => ({ host, port })),
    name: target.name,
    ...(target.username !== undefined ? { username: target.username } : {}),
    ...(target.password !== undefined ? { password: target.password } : {}),
    ...(target.sentinelPassword !== undefined ? { sentinelPassword: target.sentinelPassword } : {}),
    ...(target.tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    // Asked again on every reconnect, so a failover is followed without a restart.
    sentinelRetryStrategy: (times: number) => Math.min(100 * 2 ** times, 2_000),
    // A master demoted while still up (a manual failover, a partition) keeps clients that do not
    // watch for the switch for ~11 s, and what they write there is lost: watch for it.
    failoverDetector: true,
  };
}

/** A single server or a Sentinel master; a cluster is refused until the roles speak it. */
function assertSupported(target: RedisTarget): void {
  if (target.kind === "cluster") {
    throw new ConfigError(null, "redis", "Redis Cluster is accepted in the configuration but not yet served by this version; use one server or Sentinel (docs/redis.md#topologies)");
  }
}

/** Opens a connection to `target`; errors are logged (once per distinct message), never thrown. */
export function createRedis(target: RedisTarget, options: ConnectionOptions): Redis {
  assertSupported(target);
  const redisOptions: RedisOptions & { replyMapping?: "legacy" } = {
    connectionName: options.name.replaceAll(/[^A-Za-z0-9_.:-]/g, "_"),
    maxRetriesPerRequest: options.blocking ? null : 2,
    // A request must fail (unavailable) rather than hang while Redis does not answer.
    ...(options.blocking ? {} : { commandTimeout: COMMAND_TIMEOUT_MS }),
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2_000),
  };
  // Connections that publish on the hot path send each tick's commands in one write.
  const all: typeof redisOptions = Object.assign(redisOptions, targetOptions(target));
  const redis = target.kind === "single" ? (options.blocking ? new Redis(target.url, all) : new TickCorkedRedis(target.url, all)) : options.blocking ? new Redis(all) : new TickCorkedRedis(all);
  // quit() ends the connection to the master but not the failover detector's connections to the
  // sentinels (ioredis 6), which would then retry for ever: disconnect() closes those too.
  if (target.kind === "sentinel") redis.once("end", () => redis.disconnect());
  let lastError = "";
  redis.on("error", (err: Error) => {
    if (err.message !== lastError) options.logger?.warn({ err, connection: options.name }, "redis connection error");
    lastError = err.message;
  });
  redis.on("ready", () => {
    if (lastError !== "") options.logger?.info({ connection: options.name }, "redis connection restored");
    lastError = "";
  });
  return redis;
}

/**
 * Checks that a Redis server answers at `url` within `timeoutMs`. Throws `unavailable` with the
 * fix in its message: the first thing a new user sees when they forgot to start Redis.
 */
export async function checkRedis(target: RedisTarget, timeoutMs = 3_000): Promise<void> {
  assertSupported(target);
  const shown = describeRedis(target);
  const probe: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs, ...targetOptions(target), sentinelRetryStrategy: () => null };
  const redis = target.kind === "single" ? new Redis(target.url, probe) : new Redis(probe);
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
      throw new ServmanError("unavailable", `TLS to Redis at ${shown} failed (${reason}). If the server's certificate comes from a private CA, give Node the CA: NODE_EXTRA_CA_CERTS=/path/to/ca.pem`, {
        cause: err,
      });
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
