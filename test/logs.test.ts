/** Instance logs, post-mortems and maxMemoryMb: `servman logs`, `servman inspect`. */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { CLI, ROOT } from "./helpers/cluster.js";
import { cliEnv, runCli } from "./helpers/cli.js";
import { eventually } from "./helpers/processes.js";
import { TOPOLOGIES } from "./helpers/redis-topology.js";
import { useCluster } from "./helpers/use-cluster.js";

for (const topology of TOPOLOGIES)
  describe(`logs and post-mortems (${topology})`, () => {
    const fx = useCluster({ topology });
    const cli = (...args: string[]) => runCli([...args, "--config", fx.cluster.config.file!], { env: cliEnv() });

    it("keeps an instance's log lines, follows them live, and inspects it during and after its life", async () => {
      const client = await fx.cluster.raw();
      const { instance } = await client.request({ type: "launch", task: "echo" });
      await client.request({ type: "join", instance });
      for (const n of [1, 2, 3]) client.send({ type: "send", instance, action: "say", data: `line ${n}` });
      await eventually(async () => /line 3/.test((await cli("logs", instance)).stdout), "the lines to be kept");
      const logs = (await cli("logs", instance, "--lines", "2")).stdout.trim().split("\n");
      assert.equal(logs.length, 2);
      assert.match(logs[0], /^\d{4}-\d\d-\d\dT.* stderr +line 2$/);
      const live = JSON.parse((await cli("inspect", instance)).stdout);
      assert.deepEqual([live.live, live.state, live.task], [true, "ready", "echo"]);

      const follower = spawn(process.execPath, [CLI, "logs", instance, "--follow", "--config", fx.cluster.config.file!], { cwd: ROOT, env: cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
      let followed = "";
      follower.stdout.on("data", (d: Buffer) => (followed += d.toString()));
      const exited = new Promise<number | null>((resolve) => follower.on("close", resolve));
      await eventually(() => /line 3/.test(followed), "the follower to print the history");
      client.send({ type: "send", instance, action: "say", data: "written while followed" });
      await eventually(() => /written while followed/.test(followed), "the new line live");
      client.send({ type: "send", instance, action: "crash" });
      assert.equal(await exited, 0, "the follower ends with the instance");
      assert.match(followed, /-- instance ended: crashed/);

      const pm = JSON.parse((await cli("inspect", instance)).stdout);
      assert.deepEqual([pm.live, pm.reason, pm.code, pm.signal, pm.task], [false, "crashed", 3, null, "echo"]);
      assert.ok(pm.lastLines.includes("written while followed"));
      assert.ok(pm.peakRssMb > 0, `peak ${pm.peakRssMb} MB`);
      const http = fx.cluster.gateways[0].url.replace("ws://", "http://").replace("/v1/connect", "");
      const gone = await fetch(`${http}/v1/instances/${instance}`);
      assert.equal(gone.status, 404);
      const body = await gone.json();
      assert.equal(body.error.code, "unknown_instance");
      assert.equal(body.postMortem.reason, "crashed");
      const missing = await cli("inspect", "never-was");
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /unknown_instance/);
    });

    it("kills an instance over maxMemoryMb, saying why", async () => {
      const client = await fx.cluster.raw();
      const { instance } = await client.request({ type: "launch", task: "fat-echo" });
      await client.request({ type: "join", instance });
      client.send({ type: "send", instance, action: "grow", data: 200 });
      assert.equal((await client.next((f) => f.type === "closed", 15_000)).reason, "crashed");
      const pm = JSON.parse((await cli("inspect", instance)).stdout);
      assert.equal(pm.signal, "SIGKILL");
      assert.ok(
        pm.lastLines.some((l: string) => /over maxMemoryMb 80/.test(l)),
        JSON.stringify(pm.lastLines),
      );
      assert.ok(pm.peakRssMb > 80);
    });
  });
