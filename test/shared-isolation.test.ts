/**
 * Tasks with `isolation: "shared"` (docs/task-protocol.md#shared-isolation): several instances as
 * objects of one host process. Each keeps its own state, routing and end; the host's crash, its
 * memory limit and a blocked event loop end all of them, each under its restart policy.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { loadConfig } from "../src/config/load-config.js";
import { ConfigError } from "../src/errors.js";
import { InstanceLogs } from "../src/registry/instance-logs.js";
import { Keys } from "../src/keys.js";
import { ECHO_SERVICE, PYTHON_ECHO, type RawClient, testTasks, writeConfig } from "./helpers/cluster.js";
import { descendants, eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

const ROOM_SERVICE = fileURLToPath(new URL("./fixtures/room-service.js", import.meta.url));
const EXIT_AT_LOAD = fileURLToPath(new URL("./fixtures/exit-at-load.js", import.meta.url));
const shared = { module: ROOM_SERVICE, isolation: "shared" };

describe("isolation shared", () => {
  it("is for module tasks only, and defaults to a process per instance and 100 instances per host", () => {
    const load = (task: Record<string, unknown>) => loadConfig({ config: writeConfig({ tasks: { t: task } }) }, { PATH: process.env.PATH }).tasks.t;
    assert.equal(load({ module: ROOM_SERVICE }).isolation, "process");
    assert.deepEqual([load(shared).isolation, load(shared).instancesPerProcess], ["shared", 100]);
    assert.equal(load({ ...shared, instancesPerProcess: 7 }).instancesPerProcess, 7);
    assert.throws(
      () => load({ command: ["python3", PYTHON_ECHO], isolation: "shared" }),
      (err: Error) => err instanceof ConfigError && /tasks\.t\.isolation.*only a module task can share a process/.test(err.message),
    );
    assert.throws(() => load({ ...shared, warm: 1, warmMax: 3 }), ConfigError);
    for (const bad of [0, 1.5, "2"]) assert.throws(() => load({ ...shared, instancesPerProcess: bad }), ConfigError, `instancesPerProcess ${JSON.stringify(bad)}`);
    assert.throws(() => load({ module: ROOM_SERVICE, isolation: "thread" }), ConfigError);
  });

  describe("on a cluster", () => {
    const fx = useCluster({
      extra: {
        tasks: {
          ...testTasks(),
          rooms: { ...shared, instancesPerProcess: 2, restart: "on-failure", maxRestarts: 3 },
          "pair-rooms": { ...shared, instancesPerProcess: 2 },
          "fragile-rooms": { ...shared, restart: "never" },
          "fat-rooms": { ...shared, maxMemoryMb: 80 },
          "hung-rooms": { ...shared, livenessTimeoutMs: 5000 },
          "broken-rooms": { module: EXIT_AT_LOAD, isolation: "shared" },
          "warm-rooms": { module: ECHO_SERVICE, isolation: "shared", warm: 1 },
        },
      },
    });
    const logs = () => new InstanceLogs(fx.redis.client, new Keys("t"));

    async function launch(owner: RawClient, task: string, args?: Record<string, unknown>): Promise<string> {
      const launched = await owner.request({ type: "launch", task, ...(args ? { args } : {}), join: true });
      assert.equal(launched.type, "launched", JSON.stringify(launched));
      assert.equal(launched.joined, true);
      return launched.instance as string;
    }
    /** Adds `n` to `instance`'s counter; its answer. */
    async function add(client: RawClient, instance: string, n = 1): Promise<{ count: number; instance: string; pid: number; moduleCalls: number }> {
      client.send({ type: "send", instance, action: "add", data: n });
      const frame = await client.next((f) => f.type === "message" && f.instance === instance && f.action === "count");
      return frame.data;
    }

    it("runs two rooms in one process, each with its own state and messages, and stopping one leaves the other", async () => {
      const owner = await fx.cluster.raw();
      const a = await launch(owner, "rooms");
      const b = await launch(owner, "rooms");
      await add(owner, a);
      await add(owner, a);
      const fromA = await add(owner, a, 5);
      const fromB = await add(owner, b);
      assert.equal(fromA.count, 7);
      assert.equal(fromA.instance, a);
      assert.equal(fromB.count, 1, "b has a counter of its own");
      assert.equal(fromB.instance, b);
      assert.equal(fromA.pid, fromB.pid, "one host process runs both");
      assert.equal(fromB.moduleCalls, fromA.moduleCalls + 1, "module globals are the host's, shared by its rooms");

      // Each room's output goes to its own log, from a handler and from a timer it set.
      owner.send({ type: "send", instance: b, action: "say", data: "b-speaks" });
      await owner.next((f) => f.type === "message" && f.instance === b && f.action === "said");
      const text = async (id: string) => (await logs().read(id)).map((l) => l.text);
      await eventually(async () => (await text(b)).includes("later: b-speaks"), "b's timer line in b's log");
      assert.ok((await text(b)).includes("now: b-speaks"));
      assert.ok((await text(b)).includes(`room ${b} starting`));
      assert.ok(!(await text(a)).some((line) => line.includes("b-speaks")), JSON.stringify(await text(a)));

      // A stop ends a's object only.
      assert.equal((await owner.request({ type: "stop", instance: a })).type, "stopped");
      assert.equal((await owner.next((f) => f.type === "closed" && f.instance === a)).reason, "stopped");
      const after = await add(owner, b);
      assert.deepEqual([after.count, after.pid], [2, fromB.pid]);

      // So does a room stopping itself.
      const c = await launch(owner, "rooms");
      assert.equal((await add(owner, c)).pid, fromB.pid, "c takes a's place in the host");
      owner.send({ type: "send", instance: c, action: "stop-yourself" });
      assert.equal((await owner.next((f) => f.type === "closed" && f.instance === c)).reason, "stopped");
      assert.deepEqual([(await add(owner, b)).count, (await add(owner, b)).pid], [3, fromB.pid]);

      // A room whose onStart fails fails its launch, and nothing else.
      const failed = await owner.request({ type: "launch", task: "rooms", args: { failStart: true } });
      assert.equal(failed.code, "launch_failed", JSON.stringify(failed));
      assert.match(failed.message as string, /refuses to start/);
      assert.equal((await add(owner, b)).pid, fromB.pid);
      assert.equal((await owner.request({ type: "stop", instance: b })).type, "stopped");
    });

    it("drops a room whose shutdown overruns the deadline from its host, which goes on running the others", async () => {
      const owner = await fx.cluster.raw();
      const slow = await launch(owner, "rooms", { slowShutdown: true });
      const other = await launch(owner, "rooms");
      const { pid } = await add(owner, slow);
      const stopped = await owner.request({ type: "stop", instance: slow });
      assert.equal(stopped.type, "stopped", JSON.stringify(stopped));
      assert.deepEqual([(await add(owner, other)).count, (await add(owner, other)).pid], [1, pid]);
      assert.equal((await owner.request({ type: "stop", instance: other })).type, "stopped");
    });

    it("puts the instance past instancesPerProcess in a second host", async () => {
      const owner = await fx.cluster.raw();
      const ids = [await launch(owner, "pair-rooms"), await launch(owner, "pair-rooms"), await launch(owner, "pair-rooms")];
      const pids = [];
      for (const id of ids) pids.push((await add(owner, id)).pid);
      assert.equal(pids[0], pids[1]);
      assert.notEqual(pids[2], pids[0], "the third instance went to another host");
      for (const id of ids) assert.equal((await owner.request({ type: "stop", instance: id })).type, "stopped");
    });

    it("restarts every room of a crashed host under its restart policy, in a new host", async () => {
      const owner = await fx.cluster.raw();
      const a = await launch(owner, "rooms");
      const b = await launch(owner, "rooms");
      await add(owner, a, 10);
      const before = await add(owner, b, 10);
      process.kill(before.pid, "SIGKILL");
      for (const id of [a, b]) {
        assert.equal((await owner.next((f) => f.type === "restarting" && f.instance === id)).reason, "crashed");
        await owner.next((f) => f.type === "restarted" && f.instance === id);
      }
      const [againA, againB] = [await add(owner, a), await add(owner, b)];
      assert.deepEqual([againA.count, againB.count], [1, 1], "new objects: state starts over");
      assert.equal(againA.pid, againB.pid, "both restarted in one new host");
      assert.notEqual(againA.pid, before.pid);

      // A room crashing its host (process.exit) takes its neighbours along: restarted as well.
      owner.send({ type: "send", instance: a, action: "crash" });
      for (const id of [a, b]) await owner.next((f) => f.type === "restarted" && f.instance === id);
      for (const id of [a, b]) assert.equal((await owner.request({ type: "stop", instance: id })).type, "stopped");
    });

    it("ends every room of a crashed host for good when the policy says never", async () => {
      const owner = await fx.cluster.raw();
      const a = await launch(owner, "fragile-rooms");
      const b = await launch(owner, "fragile-rooms");
      const { pid } = await add(owner, a);
      process.kill(pid, "SIGKILL");
      for (const id of [a, b]) assert.equal((await owner.next((f) => f.type === "closed" && f.instance === id)).reason, "crashed");
      const postMortem = await logs().postMortem(b);
      assert.equal(postMortem?.signal, "SIGKILL");
    });

    it("applies maxMemoryMb to the host: over it, every room in it crashes", async () => {
      const owner = await fx.cluster.raw();
      const a = await launch(owner, "fat-rooms");
      const b = await launch(owner, "fat-rooms");
      assert.equal((await add(owner, a)).pid, (await add(owner, b)).pid);
      owner.send({ type: "send", instance: a, action: "grow", data: 100 });
      for (const id of [a, b]) assert.equal((await owner.next((f) => f.type === "closed" && f.instance === id)).reason, "crashed");
      const postMortem = await logs().postMortem(b);
      assert.ok(
        postMortem?.lastLines.some((line) => /killed: resident memory \d+ MB of its shared host \(2 instances\) over maxMemoryMb 80/.test(line)),
        JSON.stringify(postMortem?.lastLines),
      );
    });

    it("keeps warm host processes started ahead, and a room runs in one without SERVMAN_INSTANCE", async () => {
      const warmHosts = () => descendants().filter((p) => p.cmd.includes("shared-host-runner") && p.cmd.includes(ECHO_SERVICE));
      await eventually(() => warmHosts().length === 1, "the warm host to run before any launch");
      const owner = await fx.cluster.raw();
      const instance = await launch(owner, "warm-rooms");
      owner.send({ type: "send", instance, action: "whoami" });
      const who = (await owner.next((f) => f.type === "message" && f.action === "whoami")).data;
      assert.equal(who.pid, warmHosts()[0].pid);
      assert.equal(who.instance, instance);
      assert.deepEqual(who.servmanEnv, ["SERVMAN_TASK"]);
      assert.equal((await owner.request({ type: "stop", instance })).type, "stopped");
    });

    it("fails the launches placed in a host whose module cannot load, with its last words", async () => {
      const owner = await fx.cluster.raw();
      const failed = await owner.request({ type: "launch", task: "broken-rooms" });
      assert.equal(failed.code, "launch_failed", JSON.stringify(failed));
      assert.match(failed.message as string, /exit-at-load: cannot start, on purpose/);
    });

    it("kills a host whose event loop is blocked: every room in it fails its liveness", async () => {
      const owner = await fx.cluster.raw();
      const a = await launch(owner, "hung-rooms");
      const b = await launch(owner, "hung-rooms");
      await add(owner, b);
      owner.send({ type: "send", instance: a, action: "hang" });
      for (const id of [a, b]) assert.equal((await owner.next((f) => f.type === "closed" && f.instance === id, 20_000)).reason, "crashed");
    });
  });
});
