/**
 * The Redis a test runs on, whichever topology it asks for: one redis-server of its own, or a
 * Redis Cluster (3 masters, 3 replicas) shared by the whole test file, so that core scenarios
 * run on both without copying their bodies (`for (const topology of TOPOLOGIES) describe(...)`).
 *
 * A Redis Cluster costs seconds to start: one is started per test file (per process), on first
 * use, and stopped by a root-level `after` hook once every suite of the file is done, which then
 * checks that no process is left. Suites sharing it get an empty dataset each (`release` flushes
 * every master), as they would with a server of their own.
 */
import assert from "node:assert/strict";
import { after } from "node:test";
import { type Cluster, Redis } from "ioredis";
import type { RedisFileValue } from "../../src/config/redis-target.js";
import { Keys } from "../../src/keys.js";
import { descendants } from "./processes.js";
import { askNode, startRedisCluster, type TestRedisCluster } from "./redis-cluster.js";
import { startRedis, type TestRedis } from "./redis-server.js";

export type Topology = "single" | "cluster";

/** The topologies core scenarios run on. */
export const TOPOLOGIES: readonly Topology[] = ["single", "cluster"];

/** Publish commands counted by `INFO commandstats`. */
export interface PublishCounts {
  publish: number;
  spublish: number;
}

/** A Redis of either topology, as tests use it. */
export interface TopologyRedis {
  topology: Topology;
  /** One string for `redis` in a config file, `--redis` or a Launcher: `redis://…` or `redis+cluster://H:P,…`. */
  url: string;
  /** The `redis` value test configurations get: the URL, or `{cluster: [startup URLs]}`. */
  config: RedisFileValue;
  /** A connection for assertions on keys (closed by `release`). */
  client: Redis | Cluster;
  /** The key layout of this topology (prefix `t`): queue names differ on a cluster. */
  keys: Keys;
  /** The shared Redis Cluster, on that topology. */
  redisCluster?: TestRedisCluster;
  /** The server, on one server. */
  server?: TestRedis;
  /** A new connection of the right kind; `blocking` for BullMQ (closed by `release`). */
  connect(options?: { blocking?: boolean }): Redis | Cluster;
  /**
   * `publish` and `spublish` calls since the servers started, summed over every node of a cluster
   * (a replica does not count the SPUBLISH its master propagates to it, so nothing is counted twice).
   */
  publishes(): Promise<PublishCounts>;
  /** Closes the connections; stops a server of its own, empties a shared cluster. */
  release(): Promise<void>;
}

let shared: Promise<TestRedisCluster> | undefined;
let sharedPids: number[] = [];

// Registered when this module is first imported, i.e. on the file's root test: it runs after
// every suite of the file, so one cluster serves them all.
after(async () => {
  if (!shared) return;
  const cluster = await shared.catch(() => undefined);
  shared = undefined;
  await cluster?.stop();
  assert.deepEqual(descendants(), [], "no child process is left after the Redis Cluster stopped");
});

/** The file's Redis Cluster, started on first use. */
function sharedCluster(): Promise<TestRedisCluster> {
  shared ??= (async () => {
    const cluster = await startRedisCluster();
    sharedPids = [...(await cluster.masters()), ...(await cluster.replicas())].map((n) => n.pid);
    return cluster;
  })();
  return shared;
}

/** PIDs of the file's shared Redis Cluster, which outlives a suite: left out of per-suite checks. */
export function sharedClusterPids(): readonly number[] {
  return sharedPids;
}

function countOf(info: string, name: string): number {
  return Number(new RegExp(`^cmdstat_${name}:calls=(\\d+)`, "m").exec(info)?.[1] ?? 0);
}

/** A Redis of `topology`: a new redis-server, or the file's shared Redis Cluster. */
export async function startTopology(topology: Topology): Promise<TopologyRedis> {
  if (topology === "single") {
    const server = await startRedis();
    const extra: Redis[] = [];
    return {
      topology,
      url: server.url,
      config: server.url,
      client: server.client,
      keys: new Keys("t"),
      server,
      connect(options = {}) {
        const connection = new Redis(server.url, options.blocking ? { maxRetriesPerRequest: null } : {});
        connection.on("error", () => {});
        extra.push(connection);
        return connection;
      },
      async publishes() {
        const info = await server.client.info("commandstats");
        return { publish: countOf(info, "publish"), spublish: countOf(info, "spublish") };
      },
      async release() {
        for (const c of extra) c.disconnect();
        await server.stop();
      },
    };
  }
  const redisCluster = await sharedCluster();
  const client = redisCluster.client();
  return {
    topology,
    url: `redis+cluster://${redisCluster.ports.map((p) => `127.0.0.1:${p}`).join(",")}`,
    config: { cluster: redisCluster.startupUrls },
    client,
    keys: new Keys("t", { cluster: true }),
    redisCluster,
    connect(options = {}) {
      return redisCluster.client(options.blocking ? { redisOptions: { maxRetriesPerRequest: null } } : {});
    },
    async publishes() {
      const { totals } = await redisCluster.commandStats();
      return { publish: totals.publish ?? 0, spublish: totals.spublish ?? 0 };
    },
    async release() {
      // The next suite of the file starts from an empty dataset, as on a server of its own.
      for (const m of await redisCluster.masters()) await askNode(m.port, "FLUSHALL");
      // The clients stay until the cluster stops; this one is not needed any longer.
      client.disconnect();
    },
  };
}
