/**
 * The fixture most integration test files share: a redis-server of their own and a cluster on it,
 * started before the file's tests and ended after them, with a check that no process is left.
 * With `topology`, the same on either topology: a redis-server of the suite's own, or the file's
 * shared Redis Cluster (test/helpers/redis-topology.ts).
 */
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { startCluster, type StartClusterOptions, type TestCluster } from "./cluster.js";
import { descendants } from "./processes.js";
import { startRedis, type TestRedis } from "./redis-server.js";
import { sharedClusterPids, startTopology, type Topology, type TopologyRedis } from "./redis-topology.js";

export interface ClusterFixture<R = TestRedis> {
  redis: R;
  cluster: TestCluster;
}

export interface TopologyOptions extends StartClusterOptions {
  topology: Topology;
}

/** Registers the before/after hooks; the returned object is filled once `before` has run. */
export function useCluster(options?: StartClusterOptions): ClusterFixture;
/** The same on `topology`: `fx.redis.client` is a `Redis` or a `Cluster`, `fx.redis.url` one string for either. */
export function useCluster(options: TopologyOptions): ClusterFixture<TopologyRedis>;
export function useCluster(options: StartClusterOptions & { topology?: Topology } = {}): ClusterFixture<TestRedis | TopologyRedis> {
  const fixture = {} as ClusterFixture<TestRedis | TopologyRedis>;
  const { topology } = options;
  before(async () => {
    fixture.redis = topology ? await startTopology(topology) : await startRedis();
    fixture.cluster = await startCluster(fixture.redis, options);
  });
  after(async () => {
    await fixture.cluster?.close();
    const redis = fixture.redis;
    if (redis && "release" in redis) await redis.release();
    else await redis?.stop();
    // A shared Redis Cluster outlives the suite; its own hook checks once it has stopped.
    assert.deepEqual(descendants(process.pid, sharedClusterPids()), [], "no child process is left");
  });
  return fixture;
}
