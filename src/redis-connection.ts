/**
 * Creating Redis connections the same way in every role, and the startup check that turns
 * "no Redis" into a message saying what to do.
 */
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import type { Logger } from "pino";
import { ServmanError } from "./errors.js";
import { describeRedis, type ClusterRedis, type RedisTarget } from "./config/redis-target.js";
import { TickCorkedRedis } from "./tick-corked-redis.js";

/**
 * A connection to whichever topology the configuration names: one server or a Sentinel master
 * (`Redis`), or a Redis Cluster (`Cluster`). Both take the same commands; pub/sub goes through
 * `src/pubsub.ts`, which picks the sharded commands on a cluster.
 */
export type RedisClient = Redis | Cluster;

/** How long a command may wait for Redis before it fails (non-blocking connections). */
const COMMAND_TIMEOUT_MS = 5_000;

/** Options every Servman connection shares. */
export interface ConnectionOptions {
  /** Shown in `CLIENT LIST` and in logs: `servman:<role>`. */
  name: string;
  logger?: Logger;
  /** BullMQ workers and subscribers need commands to wait for a reconnect instead of failing. */
  blocking?: boolean;
  /** A subscriber connection: on a cluster, it keeps one sharded-subscription connection per master. */
  subscriber?: boolean;
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

/**
 * The startup nodes of a cluster, and the options every node connection takes from the first
 * URL: credentials and TLS (the nodes of one cluster share them).
 */
function clusterParts(target: ClusterRedis): { nodes: Array<{ host: string; port: number }>; nodeOptions: RedisOptions } {
  const nodes = target.nodes.map((url) => {
    const u = new URL(url);
    return { host: u.hostname.replace(/^\[|\]$/g, ""), port: Number(u.port || 6379) };
  });
  const first = new URL(target.nodes[0]);
  const nodeOptions: RedisOptions = {
    ...(first.username !== "" ? { username: decodeURIComponent(first.username) } : {}),
    ...(first.password !== "" ? { password: decodeURIComponent(first.password) } : {}),
    ...(first.protocol === "rediss:" ? { tls: {} } : {}),
  };
  return { nodes, nodeOptions };
}

/**
 * A cluster client: commands follow MOVED/ASK and slot changes by themselves; a subscriber keeps
 * one sharded subscription connection per master (`shardedSubscribers`), each re-subscribed by
 * ioredis after a failover.
 */
function createCluster(target: ClusterRedis, redisOptions: RedisOptions, subscriber: boolean): Cluster {
  const { nodes, nodeOptions } = clusterParts(target);
  const options: ClusterOptions = {
    redisOptions: { ...redisOptions, ...nodeOptions },
    // A failed-over master is found again within a second or two (cluster-node-timeout + election).
    clusterRetryStrategy: (times) => Math.min(100 * 2 ** times, 2_000),
    retryDelayOnFailover: 200,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2_000,
    // Commands queued while the slots are refreshed rather than failed at once.
    enableOfflineQueue: true,
    ...(subscriber ? { shardedSubscribers: true } : {}),
  };
  return new Cluster(nodes, options);
}

/** Opens a connection to `target`; errors are logged (once per distinct message), never thrown. */
export function createRedis(target: RedisTarget, options: ConnectionOptions): RedisClient {
  const redisOptions: RedisOptions & { replyMapping?: "legacy" } = {
    connectionName: options.name.replaceAll(/[^A-Za-z0-9_.:-]/g, "_"),
    maxRetriesPerRequest: options.blocking ? null : 2,
    // A request must fail (unavailable) rather than hang while Redis does not answer.
    ...(options.blocking ? {} : { commandTimeout: COMMAND_TIMEOUT_MS }),
    retryStrategy: (times) => Math.min(50 * 2 ** times, 2_000),
  };
  if (target.kind === "cluster") return watchErrors(createCluster(target, redisOptions, options.subscriber === true), options);
  // Connections that publish on the hot path send each tick's commands in one write.
  const all: typeof redisOptions = Object.assign(redisOptions, targetOptions(target));
  const redis = target.kind === "single" ? (options.blocking ? new Redis(target.url, all) : new TickCorkedRedis(target.url, all)) : options.blocking ? new Redis(all) : new TickCorkedRedis(all);
  // quit() ends the connection to the master but not the failover detector's connections to the
  // sentinels (ioredis 6), which would then retry for ever: disconnect() closes those too.
  if (target.kind === "sentinel") redis.once("end", () => redis.disconnect());
  return watchErrors(redis, options);
}

/** Logs connection errors once per distinct message, and the recovery after them. */
function watchErrors<C extends RedisClient>(redis: C, options: ConnectionOptions): C {
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
  const shown = describeRedis(target);
  const probe: RedisOptions = { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs, ...targetOptions(target), sentinelRetryStrategy: () => null };
  const redis: RedisClient = target.kind === "cluster" ? probeCluster(target, probe, timeoutMs) : target.kind === "single" ? new Redis(target.url, probe) : new Redis(probe);
  let lastError: Error | undefined;
  redis.on("error", (err: Error) => (lastError = err));
  try {
    await withTimeout(redis.connect(), timeoutMs);
    if (redis instanceof Cluster) {
      const info = await redis.cluster("INFO");
      if (!/cluster_state:ok/.test(info)) {
        throw new ServmanError(
          "unavailable",
          `The Redis Cluster at ${shown} answers but is not serving every slot (cluster_state is not ok). Check it with: redis-cli -c -h HOST -p PORT cluster info`,
        );
      }
    }
    const info = await redis.info("server");
    const version = /redis_version:(\d+)\.(\d+)/.exec(info);
    if (version && (Number(version[1]) < 6 || (Number(version[1]) === 6 && Number(version[2]) < 2))) {
      throw new ServmanError("unavailable", `Redis at ${shown} is ${version[1]}.${version[2]}; Servman needs Redis 6.2 or newer.`);
    }
  } catch (err) {
    if (err instanceof ServmanError) throw err;
    if (target.kind === "cluster") await explainNotACluster(target, timeoutMs, err);
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
        ...(target.kind === "cluster" ? ["  - a cluster:               --redis redis+cluster://HOST1:PORT1,HOST2:PORT2  (any reachable nodes of it)"] : []),
        ...(target.kind === "sentinel" ? ["  - a sentinel set:          --redis redis+sentinel://HOST1:PORT1,HOST2:PORT2/MASTER  (the sentinels, and the master's name)"] : []),
      ].join("\n"),
      { cause: err },
    );
  } finally {
    redis.disconnect();
  }
}

/** A cluster client for the startup check: one attempt, no retries. */
function probeCluster(target: ClusterRedis, probe: RedisOptions, timeoutMs: number): Cluster {
  const { nodes, nodeOptions } = clusterParts(target);
  return new Cluster(nodes, { lazyConnect: true, redisOptions: { ...probe, ...nodeOptions }, clusterRetryStrategy: () => null, slotsRefreshTimeout: timeoutMs });
}

/**
 * A cluster client that cannot load the slots says only "Failed to refresh slots cache". When a
 * startup node answers as a plain server, that is the mistake to name (throws); otherwise returns.
 */
async function explainNotACluster(target: ClusterRedis, timeoutMs: number, cause: unknown): Promise<void> {
  const { nodes, nodeOptions } = clusterParts(target);
  for (const { host, port } of nodes) {
    const plain = new Redis({ host, port, ...nodeOptions, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: timeoutMs });
    plain.on("error", () => {});
    try {
      await plain.connect();
      if (/cluster_enabled:0/.test(await plain.info("cluster"))) {
        throw new ServmanError(
          "unavailable",
          `Redis at ${host}:${port} answers but is not a cluster node (cluster_enabled:0). For one server, use --redis redis://${host}:${port}; for a cluster, give the cluster's nodes.`,
          { cause },
        );
      }
    } catch (err) {
      if (err instanceof ServmanError) throw err;
    } finally {
      plain.disconnect();
    }
  }
}

/** `promise`, or a rejection once `ms` have passed (a cluster's connect waits for its slots). */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
