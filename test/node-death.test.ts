/**
 * A node killed with SIGKILL: its instance processes end by themselves (no orphans), its
 * instances are declared lost within seconds, joined clients are told, the registry is cleaned,
 * and a task with `relaunch: true` comes back under the same id on another node; on one
 * redis-server and on a Redis Cluster.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ECHO_SERVICE, ROOT, TestCluster, testTasks, writeConfig } from "./helpers/cluster.js";
import { startServer } from "./helpers/cli.js";
import { alive, descendants, eventually } from "./helpers/processes.js";
import { sharedClusterPids, startTopology, TOPOLOGIES } from "./helpers/redis-topology.js";
import { loadConfig } from "../src/config/load-config.js";

for (const topology of TOPOLOGIES)
  describe(`node death (${topology})`, () => {
    it("SIGKILL of a node: no orphans, clients told lost, registry cleaned, relaunch elsewhere", async (t) => {
      const redis = await startTopology(topology);
      const file = writeConfig({
        redis: redis.config,
        prefix: "t",
        gateway: { host: "127.0.0.1", port: 0 },
        node: { capacity: 10, shutdownDeadlineMs: 1000 },
        tasks: { ...testTasks(), "echo-relaunch": { module: ECHO_SERVICE, relaunch: true } },
      });
      const cluster = new TestCluster(loadConfig({ config: file }, { PATH: process.env.PATH }));
      const doomed = await startServer(["--config", file, "--id", "doomed"], { bin: join(ROOT, "bin/servman-node.js") });
      try {
        await cluster.addGateway();
        const client = await cluster.raw();
        const plain = await client.request({ type: "launch", task: "echo" });
        const phoenix = await client.request({ type: "launch", task: "echo-relaunch", instance: "phoenix", args: { round: 2 } });
        assert.deepEqual([plain.node, phoenix.node], ["doomed", "doomed"]);
        await client.request({ type: "join", instance: plain.instance });
        await client.request({ type: "join", instance: phoenix.instance });
        const pids = descendants(doomed.child.pid)
          .filter((p) => p.cmd.includes("echo-service"))
          .map((p) => p.pid);
        assert.equal(pids.length, 2);
        const survivor = await cluster.addNode({ id: "survivor" });

        const killedAt = Date.now();
        doomed.child.kill("SIGKILL");
        await eventually(() => pids.every((pid) => !alive(pid)), "the dead node's instance processes to exit by themselves", 10_000);
        const orphansGoneMs = Date.now() - killedAt;

        const closed = new Map<string, string>();
        await eventually(
          () => {
            for (const f of client.frames.splice(0)) if (f.type === "closed") closed.set(f.instance, f.reason);
            return closed.size === 2;
          },
          "closed events for both instances",
          20_000,
        );
        const detectedMs = Date.now() - killedAt;
        assert.deepEqual(Object.fromEntries(closed), { [plain.instance]: "lost", phoenix: "lost" });
        assert.equal(await redis.client.exists(`{t}:instance:${plain.instance}`), 0);
        assert.equal(await redis.client.exists("{t}:node-instances:doomed"), 0);
        assert.equal(JSON.parse((await redis.client.get(`t:postmortem:{${plain.instance}}`))!).reason, "lost", "a post-mortem for the lost instance");
        assert.deepEqual(await redis.client.smembers("{t}:nodes"), ["survivor"]);

        // relaunch: true brings phoenix back, same id and args, on the survivor; clients may rejoin.
        await eventually(async () => (await redis.client.hget("{t}:instance:phoenix", "state")) === "ready", "phoenix to be relaunched", 20_000);
        assert.equal(await redis.client.hget("{t}:instance:phoenix", "node"), survivor.id);
        assert.equal((await client.request({ type: "join", instance: "phoenix" })).type, "joined");
        client.send({ type: "send", instance: "phoenix", action: "whoami" });
        assert.deepEqual((await client.next((f) => f.action === "whoami")).data.args, { round: 2 });
        t.diagnostic(`instance processes gone ${orphansGoneMs} ms after SIGKILL; clients told lost after ${detectedMs} ms`);
        assert.equal((await client.request({ type: "stop", instance: "phoenix" })).type, "stopped");
      } finally {
        await doomed.stop("SIGKILL");
        await cluster.close();
        await redis.release();
      }
      assert.deepEqual(descendants(process.pid, sharedClusterPids()), []);
    });
  });
