/** A `command` task: the Python example speaks NDJSON on stdio, args arrive only in `start`. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { descendants } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

describe("command task (examples/python-echo)", () => {
  const fx = useCluster({ gateways: 2 });

  it("launches, echoes with args and channel, broadcasts, refuses a join, and stops", async () => {
    const a = await fx.cluster.raw(0);
    const b = await fx.cluster.raw(1);
    const { instance, type } = await a.request({ type: "launch", task: "python-echo", args: { level: 3 } });
    assert.equal(type, "launched");
    const proc = descendants().find((p) => p.cmd.includes("echo.py"));
    assert.ok(proc, "a python process runs");
    assert.ok(!proc.cmd.includes("level"), "args never reach the command line");
    await a.request({ type: "join", instance });
    a.send({ type: "send", instance, action: "hello", data: [1, "two"], channel: "lobby" });
    const echo = await a.next((f) => f.action === "echo");
    assert.deepEqual(echo, { type: "message", instance, action: "echo", data: { action: "hello", data: [1, "two"], args: { level: 3 } }, channel: "lobby" });
    assert.equal((await b.request({ type: "join", instance, data: "let me down" })).code, "join_rejected");
    await b.request({ type: "join", instance });
    a.send({ type: "send", instance, action: "shout", data: "hi all" });
    assert.equal((await a.next((f) => f.action === "shouted")).data, "hi all");
    assert.equal((await b.next((f) => f.action === "shouted")).data, "hi all");
    assert.equal((await a.request({ type: "stop", instance })).type, "stopped");
    assert.equal((await b.next((f) => f.type === "closed")).reason, "stopped");
  });

  it("reports a self-stop as stopped and a crash as crashed", async () => {
    const a = await fx.cluster.raw(0);
    const quit = await a.request({ type: "launch", task: "python-echo" });
    await a.request({ type: "join", instance: quit.instance });
    a.send({ type: "send", instance: quit.instance, action: "quit" });
    assert.equal((await a.next((f) => f.type === "closed")).reason, "stopped");
    const crash = await a.request({ type: "launch", task: "python-echo" });
    await a.request({ type: "join", instance: crash.instance });
    a.send({ type: "send", instance: crash.instance, action: "crash" });
    assert.equal((await a.next((f) => f.type === "closed")).reason, "crashed");
  });
});
