/**
 * Warm pools (`warm: N`): processes started before any launch, adopted by launches (and restarts),
 * refilled, replaced when they die, ended with their node; for `module` and `command` tasks.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { after, before, describe, it } from "node:test";
import { pino } from "pino";
import { Launcher } from "../src/launcher/launcher.js";
import { join } from "node:path";
import { ECHO_SERVICE, PYTHON_ECHO, ROOT, startCluster, writeConfig, type RawClient } from "./helpers/cluster.js";
import { cliEnv, runCli, startServer } from "./helpers/cli.js";
import { alive, descendants, eventually } from "./helpers/processes.js";
import { startRedis, type TestRedis } from "./helpers/redis-server.js";
import { useCluster } from "./helpers/use-cluster.js";

const EXIT_AT_LOAD = fileURLToPath(new URL("./fixtures/exit-at-load.js", import.meta.url));

const WARM_TASKS = {
  "warm-echo": { module: ECHO_SERVICE, warm: 2 },
  "warm-crashy": { module: ECHO_SERVICE, warm: 1, restart: "on-failure", maxRestarts: 2 },
  "warm-python": { command: ["python3", PYTHON_ECHO], warm: 1 },
};

/** The task a process of ours was started for (every instance process has SERVMAN_TASK). */
function taskOf(pid: number): string | null {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    return env.find((e) => e.startsWith("SERVMAN_TASK="))?.slice("SERVMAN_TASK=".length) ?? null;
  } catch {
    return null;
  }
}

/** Process group of `pid` (field 5 of /proc/<pid>/stat). */
function processGroup(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
}

/** Live processes of `task` below this test process. */
function processesOf(task: string): number[] {
  return descendants()
    .map((p) => p.pid)
    .filter((pid) => alive(pid) && taskOf(pid) === task)
    .sort((a, b) => a - b);
}

async function whoami(client: RawClient, instance: string): Promise<Record<string, any>> {
  client.send({ type: "send", instance, action: "whoami" });
  return (await client.next((f) => f.action === "whoami" && f.instance === instance)).data;
}

describe("warm pool", () => {
  let launcher: Launcher;
  // Registered before the cluster's hooks, so the launcher closes before its Redis stops.
  after(() => launcher?.close());
  const fx = useCluster({ extra: { tasks: { ...WARM_TASKS, echo: { module: ECHO_SERVICE } } } });
  before(() => {
    launcher = new Launcher({ redis: fx.redis.url, prefix: "t" });
  });

  /** Processes of `task` waiting in the pool: those of the task that no instance holds. */
  async function poolOf(task: string): Promise<number[]> {
    const held = new Set((await launcher.list()).map((r) => r.pid));
    return processesOf(task).filter((pid) => !held.has(pid));
  }

  /** Waits until the pool of `task` holds `count` processes, and returns their pids. */
  async function fullPool(task: string, count: number): Promise<number[]> {
    let pids: number[] = [];
    await eventually(async () => {
      pids = await poolOf(task);
      return pids.length === count && fx.cluster.nodes[0].warm[task] === count;
    }, `${count} warm processes of ${task}`);
    return pids;
  }

  it("keeps `warm` processes per task before any launch, each in its own process group, shown by `servman nodes --json`", async () => {
    assert.deepEqual(await launcher.list(), [], "no instance yet");
    const echo = await fullPool("warm-echo", 2);
    await fullPool("warm-crashy", 1);
    await fullPool("warm-python", 1);
    for (const pid of echo) assert.equal(processGroup(pid), pid, "a warm process leads its own process group");
    assert.deepEqual(processesOf("echo"), [], "a task without warm has no process waiting");
    await eventually(async () => {
      const out = await runCli(["nodes", "--json", "--redis", fx.redis.url, "--prefix", "t"], { env: cliEnv() });
      const nodes = JSON.parse(out.stdout) as { warm: Record<string, number> }[];
      return nodes.length === 1 && JSON.stringify(nodes[0].warm) === JSON.stringify({ "warm-echo": 2, "warm-crashy": 1, "warm-python": 1 });
    }, "the node record to show the pools");
  });

  it("a launch adopts a warm process: start args reach it, it works, and the pool refills", async () => {
    const warm = await fullPool("warm-echo", 2);
    const a = await fx.cluster.raw(0);
    const { type, instance } = await a.request({ type: "launch", task: "warm-echo", args: { level: 7 } });
    assert.equal(type, "launched");
    await a.request({ type: "join", instance });
    const me = await whoami(a, instance);
    assert.ok(warm.includes(me.pid), `the instance runs in a warm process (${me.pid} of ${warm.join(", ")})`);
    assert.equal(me.instance, instance, "the instance id came in start");
    assert.equal(me.task, "warm-echo");
    assert.deepEqual(me.args, { level: 7 });
    assert.deepEqual(me.servmanEnv, ["SERVMAN_TASK"], "a warm task's processes never get SERVMAN_INSTANCE");
    assert.equal((await launcher.get(instance))?.pid, me.pid);
    a.send({ type: "send", instance, action: "echo", data: { hello: "warm" } });
    assert.deepEqual((await a.next((f) => f.action === "echo")).data, { hello: "warm" });
    const refilled = await fullPool("warm-echo", 2);
    assert.ok(!refilled.includes(me.pid), "the adopted process left the pool");
    assert.equal((await a.request({ type: "stop", instance })).type, "stopped");
    await eventually(() => !alive(me.pid), "the instance's process to end");
  });

  it("launches past the pool's size start cold processes and all work", async () => {
    await fullPool("warm-echo", 2);
    const a = await fx.cluster.raw(0);
    const launched = await Promise.all([1, 2, 3, 4].map(() => a.request({ type: "launch", task: "warm-echo" })));
    for (const { instance } of launched) {
      await a.request({ type: "join", instance });
      a.send({ type: "send", instance, action: "echo", data: instance });
      assert.equal((await a.next((f) => f.action === "echo" && f.instance === instance)).data, instance);
    }
    await Promise.all(launched.map(({ instance }) => a.request({ type: "stop", instance })));
    await fullPool("warm-echo", 2);
  });

  it("a warm process killed while it waits is replaced", async () => {
    const [victim, other] = await fullPool("warm-echo", 2);
    process.kill(victim, "SIGKILL");
    await eventually(async () => {
      const pids = await poolOf("warm-echo");
      return !alive(victim) && pids.length === 2 && pids.includes(other) && fx.cluster.nodes[0].warm["warm-echo"] === 2;
    }, "a replacement for the killed warm process");
  });

  it("a restart takes a warm process too", async () => {
    await fullPool("warm-crashy", 1);
    const a = await fx.cluster.raw(0);
    const { instance } = await a.request({ type: "launch", task: "warm-crashy", args: { keep: "me" } });
    await a.request({ type: "join", instance });
    const first = await whoami(a, instance);
    const [waiting] = await fullPool("warm-crashy", 1);
    a.send({ type: "send", instance, action: "crash" });
    assert.equal((await a.next((f) => f.type === "restarted")).attempt, 1);
    const second = await whoami(a, instance);
    assert.equal(second.pid, waiting, "the restarted process came from the pool");
    assert.notEqual(second.pid, first.pid);
    assert.deepEqual(second.args, { keep: "me" });
    assert.equal((await a.request({ type: "stop", instance })).type, "stopped");
  });

  it("a command task with warm: the launch adopts a waiting process, args arrive in start", async () => {
    const [waiting] = await fullPool("warm-python", 1);
    const a = await fx.cluster.raw(0);
    const { type, instance } = await a.request({ type: "launch", task: "warm-python", args: { level: 3 } });
    assert.equal(type, "launched");
    assert.equal((await launcher.get(instance))?.pid, waiting, "the instance runs in the warm process");
    await a.request({ type: "join", instance });
    a.send({ type: "send", instance, action: "hello", data: [1, "two"] });
    assert.deepEqual((await a.next((f) => f.action === "echo")).data, { action: "hello", data: [1, "two"], args: { level: 3 } });
    await fullPool("warm-python", 1);
    assert.equal((await a.request({ type: "stop", instance })).type, "stopped");
  });
});

describe("warm pool with warmMax", () => {
  // Grows from 1 toward 4 with the launches of the last 10 s, then shrinks back.
  const fx = useCluster({ extra: { tasks: { grow: { module: ECHO_SERVICE, warm: 1, warmMax: 4 } } } });

  /** Waits until the node shows `count` waiting processes of `grow` and exactly that many run. */
  async function pool(count: number, ms?: number): Promise<number[]> {
    await eventually(() => fx.cluster.nodes[0].warm.grow === count && processesOf("grow").length === count, `${count} warm processes of grow`, ms);
    return processesOf("grow");
  }

  /** Launches `count` instances of `grow` at once; each answers; returns their pids. */
  async function burst(a: RawClient, count: number): Promise<{ instance: string; pid: number }[]> {
    const launched = await Promise.all(Array.from({ length: count }, () => a.request({ type: "launch", task: "grow" })));
    const out: { instance: string; pid: number }[] = [];
    for (const { type, instance } of launched) {
      assert.equal(type, "launched");
      await a.request({ type: "join", instance });
      out.push({ instance, pid: (await whoami(a, instance)).pid as number });
    }
    return out;
  }

  async function stopAll(a: RawClient, instances: { instance: string; pid: number }[]): Promise<void> {
    for (const { instance } of instances) assert.equal((await a.request({ type: "stop", instance })).type, "stopped");
    await eventually(() => instances.every(({ pid }) => !alive(pid)), "the instances' processes to end");
  }

  it("a burst past warm is served, grows the pool toward warmMax so the next burst is served warm, and the pool shrinks back", async () => {
    await pool(1);
    const a = await fx.cluster.raw(0);
    const first = await burst(a, 4);
    await stopAll(a, first);
    const grown = await pool(4);
    await eventually(async () => {
      const out = await runCli(["nodes", "--json", "--redis", fx.redis.url, "--prefix", "t"], { env: cliEnv() });
      const nodes = JSON.parse(out.stdout) as { warm: Record<string, number> }[];
      return nodes.length === 1 && nodes[0].warm.grow === 4;
    }, "the node record to show the grown pool");
    const second = await burst(a, 4);
    assert.deepEqual(
      second.map((i) => i.pid).sort((x, y) => x - y),
      grown,
      "every launch of the second burst adopted a waiting process",
    );
    await stopAll(a, second);
    // 10 s after the last launch the window is empty: back to warm (1).
    await pool(1, 40_000);
  });
});

describe("warm pool of a task whose process cannot start", () => {
  const logs: Record<string, any>[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => void logs.push(JSON.parse(line)) });
  useCluster({ logger, extra: { tasks: { broken: { module: EXIT_AT_LOAD, warm: 2 } } } });

  it("replaces dead processes with a growing backoff and warns once", async () => {
    const deaths = () => logs.filter((l) => typeof l.msg === "string" && l.msg.startsWith("a warm process could not start") && l.task === "broken");
    await eventually(() => deaths().length >= 6, "six deaths", 30_000);
    const seen = deaths();
    const story = JSON.stringify(seen.map(({ level, code, signal, lastLines, failuresInARow, retryInMs }) => ({ level, code, signal, lastLines, failuresInARow, retryInMs })));
    assert.equal(seen.filter((l) => l.level === 40).length, 1, `one warning for the whole streak: ${story}`);
    assert.equal(seen[0].code, 4, story);
    assert.ok(String(seen[0].lastLines).includes("cannot start, on purpose"), `the warning says what the process wrote: ${story}`);
    const waits = seen.map((l) => l.retryInMs as number);
    for (let i = 1; i < waits.length; i++) assert.ok(waits[i] > waits[i - 1], `the backoff grows: ${waits.join(", ")}`);
  });
});

describe("warm pool and the node's end", () => {
  let redis: TestRedis;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());
  const mine = () => descendants(process.pid, [redis.pid]);

  for (const how of ["drain", "close"] as const) {
    it(`${how} ends the waiting processes and the instances: no process is left`, async () => {
      const cluster = await startCluster(redis, { extra: { prefix: `end-${how}`, tasks: WARM_TASKS } });
      try {
        await eventually(() => mine().length === 4, "the pools to fill");
        const a = await cluster.raw(0);
        assert.equal((await a.request({ type: "launch", task: "warm-echo" })).type, "launched");
        await eventually(() => mine().length === 5, "the pool to refill");
        const node = cluster.nodes[0];
        await (how === "drain" ? node.drain(2_000) : node.close());
        assert.deepEqual(mine(), [], "no process left");
      } finally {
        await cluster.close();
      }
    });
  }

  it("SIGKILL of the node: its waiting processes, module and command, exit by themselves", async () => {
    const file = writeConfig({ redis: redis.url, prefix: "end-sigkill", node: { capacity: 10 }, tasks: WARM_TASKS });
    const node = await startServer(["--config", file], { bin: join(ROOT, "bin/servman-node.js") });
    try {
      const below = () => descendants(node.child.pid).map((p) => p.pid);
      await eventually(() => below().length === 4, "the pools to fill");
      const waiting = below();
      node.child.kill("SIGKILL");
      await eventually(() => waiting.every((pid) => !alive(pid)), "the waiting processes to exit without their node");
    } finally {
      await node.stop("SIGKILL");
    }
    assert.deepEqual(mine(), [], "no process left");
  });
});
