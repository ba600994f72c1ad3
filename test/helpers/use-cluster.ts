/**
 * The fixture most integration test files share: a redis-server of their own and a cluster on it,
 * started before the file's tests and ended after them, with a check that no process is left.
 */
import assert from "node:assert/strict";
import { after, before } from "node:test";
import { startCluster, type StartClusterOptions, type TestCluster } from "./cluster.js";
import { descendants } from "./processes.js";
import { startRedis, type TestRedis } from "./redis-server.js";

export interface ClusterFixture {
  redis: TestRedis;
  cluster: TestCluster;
}

/** Registers the before/after hooks; the returned object is filled once `before` has run. */
export function useCluster(options: StartClusterOptions = {}): ClusterFixture {
  const fixture = {} as ClusterFixture;
  before(async () => {
    fixture.redis = await startRedis();
    fixture.cluster = await startCluster(fixture.redis, options);
  });
  after(async () => {
    await fixture.cluster?.close();
    await fixture.redis?.stop();
    assert.deepEqual(descendants(), [], "no child process is left");
  });
  return fixture;
}
