/** The `servman` and `servman-node` programs (docs/cli.md), run as real processes. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ROOT, testTasks, writeConfig } from "./helpers/cluster.js";
import { cliEnv, freePort, runCli, startServer, type ServerProcess } from "./helpers/cli.js";
import { alive, descendants, eventually } from "./helpers/processes.js";
import { startRedis, type TestRedis } from "./helpers/redis-server.js";

describe("servman CLI", () => {
  let redis: TestRedis;
  let config: string;
  let port: number;
  let server: ServerProcess;
  const servers: ServerProcess[] = [];

  before(async () => {
    redis = await startRedis();
    port = await freePort();
    config = writeConfig({ redis: redis.url, prefix: "cli", gateway: { port }, node: { capacity: 5, shutdownDeadlineMs: 1000 }, tasks: testTasks() });
    server = await startServer(["start", "--config", config, "--id", "main-node"]);
    servers.push(server);
  });

  after(async () => {
    for (const s of servers) await s.stop("SIGKILL");
    await redis?.stop();
    assert.deepEqual(descendants(), []);
  });

  const cli = (...args: string[]) => runCli([...args, "--config", config]);

  it("prints usage with --help and exits 0", async () => {
    const r = await runCli(["--help"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /Usage: servman <command>/);
    assert.match(r.stdout, /heartbeat N/);
  });

  it("prints the package version with --version or -v, reading no configuration", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    const env = cliEnv({ SERVMAN_CONFIG: join(ROOT, "no-such-folder/servman.json") });
    assert.equal((await runCli(["ls"], { env })).code, 2, "that configuration is broken");
    for (const args of [["--version"], ["-v"], ["ls", "--version"]]) {
      const r = await runCli(args, { env });
      assert.deepEqual([r.code, r.stdout, r.stderr], [0, `${version}\n`, ""], args.join(" "));
    }
    const node = await runCli(["--version"], { env, bin: join(ROOT, "bin/servman-node.js") });
    assert.deepEqual([node.code, node.stdout], [0, `${version}\n`], "servman-node --version");
  });

  it("exits 2 on a usage error", async () => {
    const unknown = await runCli(["explode"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown command "explode"/);
    const flag = await runCli(["ls", "--colour"]);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /--colour/);
    const missing = await cli("launch");
    assert.equal(missing.code, 2);
    const badArgs = await cli("launch", "echo", "--args", "[1]");
    assert.equal(badArgs.code, 2);
    assert.match(badArgs.stderr, /--args expects a JSON object/);
  });

  it("exits 2 on a bad configuration, naming the file and key", async () => {
    const bad = writeConfig({ redis: redis.url, tasks: { echo: { module: "./nowhere.js" } } });
    for (const command of ["start", "node", "ls"]) {
      const r = await runCli([command, "--config", bad]);
      assert.equal(r.code, 2, r.stderr);
      assert.ok(r.stderr.includes(bad), r.stderr);
      assert.match(r.stderr, /tasks\.echo\.module/);
    }
  });

  it("exits 1 and says what to do when no Redis answers", async () => {
    const deadPort = await freePort();
    for (const command of ["start", "ls"]) {
      const r = await runCli([command, "--redis", `redis://127.0.0.1:${deadPort}`, "--config", config]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, /No Redis answers at redis:\/\/127\.0\.0\.1:\d+/);
      assert.match(r.stderr, /redis-server --port 6379/);
      assert.match(r.stderr, /--redis redis:\/\/HOST:PORT/);
    }
  });

  it("says what it tried when no cluster node or sentinel answers, and how to point at one", async () => {
    const [a, b] = [await freePort(), await freePort()];
    const cases = [
      { url: `redis+cluster://127.0.0.1:${a},127.0.0.1:${b}`, tried: `cluster redis://127.0.0.1:${a},redis://127.0.0.1:${b}`, hint: /redis\+cluster:\/\/HOST1:PORT1,HOST2:PORT2/ },
      { url: `redis+sentinel://127.0.0.1:${a},127.0.0.1:${b}/main`, tried: `sentinel master "main" via 127.0.0.1:${a},127.0.0.1:${b}`, hint: /redis\+sentinel:\/\/HOST1:PORT1,HOST2:PORT2\/MASTER/ },
    ];
    for (const { url, tried, hint } of cases) {
      const r = await runCli(["ls", "--redis", url, "--config", config]);
      assert.equal(r.code, 1, r.stderr);
      assert.ok(r.stderr.includes(`No Redis answers at ${tried}`), r.stderr);
      assert.match(r.stderr, hint);
    }
    // A plain server named as a cluster: refused with what it is, not a hang.
    const single = await runCli(["ls", "--redis", `redis+cluster://127.0.0.1:${redis.port}`, "--config", config]);
    assert.equal(single.code, 1, single.stderr);
    assert.match(single.stderr, /answers but is not a cluster node \(cluster_enabled:0\)/);
    assert.ok(single.stderr.includes(`--redis redis://127.0.0.1:${redis.port}`), single.stderr);
  });

  it("launches, lists, stops through Redis", async () => {
    const launched = await cli("launch", "echo", "--args", '{"map":"dust"}', "--id", "cli-1");
    assert.equal(launched.code, 0, launched.stderr);
    assert.deepEqual(JSON.parse(launched.stdout), { instance: "cli-1", node: "main-node" });
    assert.equal(launched.stdout.trim().split("\n").length, 1, "exactly one line");

    const table = await cli("ls");
    assert.equal(table.code, 0);
    assert.match(table.stdout, /^INSTANCE\s+TASK\s+NODE\s+STATE/m);
    assert.match(table.stdout, /^cli-1\s+echo\s+main-node\s+ready\s+admin/m);
    const json = JSON.parse((await cli("ls", "--json")).stdout);
    assert.deepEqual(
      json.map((r: any) => [r.instance, r.task, r.node, r.state]),
      [["cli-1", "echo", "main-node", "ready"]],
    );

    const again = await cli("launch", "echo", "--id", "cli-1");
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already_exists/);

    const stopped = await cli("stop", "cli-1");
    assert.equal(stopped.code, 0, stopped.stderr);
    assert.deepEqual(JSON.parse(stopped.stdout), { instance: "cli-1", stopped: true });
    const gone = await cli("stop", "cli-1");
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /unknown_instance/);
    assert.match((await cli("ls")).stdout, /no instances/);

    const unknown = await cli("launch", "nope");
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /unknown_task/);
  });

  it("lists nodes; servman-node joins the cluster and leaves it on SIGTERM", async () => {
    const extra = await startServer(["--config", config, "--id", "extra-node", "--capacity", "1"], { bin: join(ROOT, "bin/servman-node.js") });
    servers.push(extra);
    const nodes = JSON.parse((await cli("nodes", "--json")).stdout);
    assert.deepEqual(
      nodes.map((n: any) => [n.id, n.capacity, n.draining]),
      [
        ["extra-node", 1, false],
        ["main-node", 5, false],
      ],
    );
    assert.match((await cli("nodes")).stdout, /^extra-node\s+\S+\s+\d+\s+0\s+1\s+echo,/m);
    assert.equal(await extra.stop("SIGTERM"), 0);
    const after = JSON.parse((await cli("nodes", "--json")).stdout);
    assert.deepEqual(
      after.map((n: any) => n.id),
      ["main-node"],
    );
  });

  it("drains a node through Redis with servman drain: its instances stop, the process exits 0", async () => {
    const drainConfig = writeConfig({ redis: redis.url, prefix: "drn", node: { capacity: 2, shutdownDeadlineMs: 1000 }, tasks: testTasks() });
    const drainee = await startServer(["--config", drainConfig, "--id", "drainee"], { bin: join(ROOT, "bin/servman-node.js") });
    servers.push(drainee);
    const launched = JSON.parse((await runCli(["launch", "echo", "--config", drainConfig])).stdout);
    assert.equal(launched.node, "drainee");
    const exited = new Promise<number | null>((resolve) => drainee.child.once("close", resolve));
    const r = await runCli(["drain", "drainee", "--deadline", "1000", "--config", drainConfig]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { node: "drainee", drained: true });
    assert.equal(await exited, 0);
    assert.equal(await redis.client.exists(`{drn}:instance:${launched.instance}`), 0);
    const ghost = await runCli(["drain", "ghost", "--config", drainConfig]);
    assert.equal(ghost.code, 1);
    assert.match(ghost.stderr, /no live node "ghost"/);
  });

  it("runs a gateway and a node as separate processes", async () => {
    const gwPort = await freePort();
    const gateway = await startServer(["gateway", "--config", config, "--port", String(gwPort)]);
    servers.push(gateway);
    const health = await fetch(`http://127.0.0.1:${gwPort}/healthz`);
    assert.equal(health.status, 200);
    const r = await runCli(["heartbeat", "3", "--pings", "3", "--interval", "20", "--gateway", `ws://127.0.0.1:${gwPort}/v1/connect`, "--config", config]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /3\/3 pairs ok, 0 failed/);
    assert.equal(await gateway.stop("SIGTERM"), 0);
  });

  it("refuses to bind a non-loopback address without auth unless --insecure", async () => {
    const r = await runCli(["gateway", "--config", config, "--host", "0.0.0.0", "--port", String(await freePort())]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /refusing to listen on 0\.0\.0\.0/);
    assert.match(r.stderr, /--insecure/);
  });

  it("refuses a TLS configuration it cannot read before anything starts", async () => {
    const withTls = writeConfig({ redis: redis.url, gateway: { port: await freePort(), tls: { cert: "./c.pem", key: "./k.pem" } } });
    const t = await runCli(["start", "--config", withTls]);
    assert.equal(t.code, 2);
    assert.match(t.stderr, /at gateway\.tls\.cert: cannot read/);
    assert.deepEqual(await redis.client.smembers("{servman}:nodes"), [], "start refused before a node registered");
  });

  it("drains on SIGTERM: instances shut down, registry cleaned, exit 0", async () => {
    const drainPort = await freePort();
    const drainConfig = writeConfig({ redis: redis.url, prefix: "drain", gateway: { port: drainPort }, node: { capacity: 5, shutdownDeadlineMs: 1000 }, tasks: testTasks() });
    const s = await startServer(["start", "--config", drainConfig]);
    servers.push(s);
    const launched = JSON.parse((await runCli(["launch", "echo", "--config", drainConfig])).stdout);
    const pids = descendants(s.child.pid)
      .filter((p) => p.cmd.includes("echo-service"))
      .map((p) => p.pid);
    assert.equal(pids.length, 1);
    // A launch still waiting for ready does not hold the drain up: it fails, saying why.
    const pending = runCli(["launch", "echo", "--args", '{"readyDelayMs":60000}', "--config", drainConfig]);
    await eventually(() => descendants(s.child.pid).filter((p) => p.cmd.includes("echo-service")).length === 2, "the second launch to start");
    assert.equal(await s.stop("SIGTERM"), 0);
    const failed = await pending;
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /launch_failed: the node is draining/);
    assert.equal(alive(pids[0]), false, "the instance process is gone");
    assert.equal(await redis.client.exists(`{drain}:instance:${launched.instance}`), 0);
    assert.deepEqual(await redis.client.smembers("{drain}:nodes"), []);
  });

  it("stops the main server cleanly", async () => {
    assert.equal(await server.stop("SIGINT"), 0);
    await eventually(() => descendants().length === 1, "only redis-server to remain");
  });
});

describe("servman heartbeat", () => {
  let redis: TestRedis;

  before(async () => {
    redis = await startRedis();
  });

  after(async () => {
    await redis?.stop();
    assert.deepEqual(descendants(), []);
  });

  it("passes 50 pairs self-contained, leaving no process and no key behind", async () => {
    const r = await runCli(["heartbeat", "50", "--pings", "5", "--interval", "100", "--json", "--redis", redis.url], { env: cliEnv(), timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stdout + r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.deepEqual([summary.pairs, summary.ok, summary.failed, summary.pings, summary.pongs], [50, 50, 0, 250, 250]);
    assert.ok(summary.rttP50Ms > 0 && summary.rttP99Ms >= summary.rttP50Ms);
    assert.equal(await redis.client.dbsize(), 0, "no key left");
    assert.deepEqual(descendants(undefined, [redis.pid]), [], "no process left");
  });

  it("prints a readable summary and exits 1 when a pair fails", async () => {
    // A deployment whose heartbeat task cannot be found: every pair fails to launch.
    const r = await runCli(["heartbeat", "2", "--pings", "1", "--gateway", "ws://127.0.0.1:1/v1/connect", "--redis", redis.url], { timeoutMs: 30_000 });
    assert.equal(r.code, 1);
    assert.match(r.stdout, /0\/2 pairs ok, 2 failed/);
    assert.match(r.stdout, /2 x could not connect/);
  });
});
