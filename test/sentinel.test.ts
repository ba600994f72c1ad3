/**
 * Servman on Redis Sentinel (docs/configuration.md#redis): a gateway and a node find the master
 * through three sentinels, and when the master dies and its replica is promoted, nothing is
 * restarted: the joined client stays joined, messages flow again, and new launches work.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { loadConfig } from "../src/config/load-config.js";
import { TestCluster, testTasks, writeConfig, type RawClient } from "./helpers/cluster.js";
import { describeTraffic, disorder, FailoverTraffic, lostNothingSilently } from "./helpers/failover-traffic.js";
import { descendants } from "./helpers/processes.js";
import { startRedisSentinel, type TestRedisSentinel } from "./helpers/redis-sentinel.js";

const PASSWORD = "sentinel-test-pass";

describe("Servman on Redis Sentinel", () => {
  let sentinel: TestRedisSentinel;
  let cluster: TestCluster;

  before(async () => {
    sentinel = await startRedisSentinel({ password: PASSWORD });
    const file = writeConfig({
      redis: { sentinels: sentinel.sentinels.map((s) => `${s.host}:${s.port}`), name: sentinel.name, password: PASSWORD },
      prefix: "t",
      gateway: { host: "127.0.0.1", port: 0 },
      node: { capacity: 10, shutdownDeadlineMs: 2000 },
      tasks: testTasks(),
    });
    cluster = new TestCluster(loadConfig({ config: file }, { PATH: process.env.PATH }));
    await cluster.addNode();
    await cluster.addGateway();
  });
  after(async () => {
    await cluster?.close();
    await sentinel?.stop();
    assert.deepEqual(descendants(), [], "no child process is left");
  });

  it("serves through the sentinels' master, and after a failover needs no restart", async (t) => {
    const client: RawClient = await cluster.raw();
    assert.equal((await client.request({ type: "launch", task: "echo", instance: "before" })).type, "launched");
    assert.equal((await client.request({ type: "join", instance: "before" })).type, "joined");
    client.send({ type: "send", instance: "before", action: "echo", data: "hello" });
    assert.equal((await client.next((f) => f.type === "message")).data, "hello");

    // Traffic through the failover: echoes sent steadily, and the instance broadcasting a numbered stream.
    client.send({ type: "send", instance: "before", action: "whoami" });
    const pid = (await client.next((f) => f.type === "message" && f.action === "whoami")).data.pid as number;
    const traffic = new FailoverTraffic(client, "before");
    await traffic.start();

    const oldMaster = await sentinel.master();
    traffic.mark();
    const killedAt = Date.now();
    await sentinel.kill(oldMaster);
    const newMaster = await sentinel.waitForFailover(oldMaster);
    assert.notEqual(newMaster, oldMaster);
    const promotedAt = Date.now();
    await traffic.recovered();
    const report = await traffic.stop();
    t.diagnostic(`master killed -> replica promoted ${promotedAt - killedAt} ms`);
    t.diagnostic(describeTraffic(report));
    // One server: every publish of one connection arrives in order, so order is asserted too.
    assert.deepEqual(lostNothingSilently(report), []);
    assert.deepEqual(disorder(report).outOfOrder, [], "ticks in order");
    assert.equal(client.closeCode, null, "the client's connection was never closed");
    client.send({ type: "send", instance: "before", action: "whoami" });
    assert.equal((await client.next((f) => f.type === "message" && f.action === "whoami")).data.pid, pid, "the instance's process is the same");

    // New launches and joins work on the promoted master.
    assert.equal((await client.request({ type: "launch", task: "echo", instance: "after" }, 30_000)).type, "launched");
    assert.equal((await client.request({ type: "join", instance: "after" })).type, "joined");
    client.send({ type: "send", instance: "after", action: "echo", data: "again" });
    assert.equal((await client.next((f) => f.type === "message" && f.data === "again")).instance, "after");
  });
});
