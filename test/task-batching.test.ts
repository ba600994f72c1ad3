/**
 * What the node and the SDK send in one tick leaves together (docs/task-protocol.md#batching-node-ipc).
 * Over Node IPC it is an offer: a `module` task that speaks the protocol without the SDK and
 * never sends an array gets one message per IPC message, as before; one that takes the offer gets
 * arrays, and every item of what it sends is validated on its own. Over stdio (`command` tasks)
 * a burst is written in one go, still one message per line. Either way nothing is lost or
 * reordered.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import type { RawClient } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { ECHO_SERVICE, PYTHON_ECHO } from "./helpers/cluster.js";
import { useCluster } from "./helpers/use-cluster.js";

const RAW_IPC_TASK = fileURLToPath(new URL("./fixtures/raw-ipc-task.js", import.meta.url));
const BURST = 500;

async function joinNew(client: RawClient, task: string): Promise<string> {
  const launched = await client.request({ type: "launch", task });
  assert.equal(launched.type, "launched", JSON.stringify(launched));
  assert.equal((await client.request({ type: "join", instance: launched.instance })).type, "joined");
  return launched.instance as string;
}

/** Sends BURST messages at once and checks every echo comes back, in order. */
async function burstEchoes(client: RawClient, instance: string, unwrap = (data: any): unknown => data): Promise<void> {
  for (let i = 0; i < BURST; i++) client.send({ type: "send", instance, action: "echo", data: i });
  const echoes: unknown[] = [];
  while (echoes.length < BURST) echoes.push(unwrap((await client.next((f) => f.type === "message" && f.action === "echo" && f.instance === instance)).data));
  assert.deepEqual(
    echoes,
    Array.from({ length: BURST }, (_, i) => i),
  );
}

async function report(client: RawClient, instance: string): Promise<{ start: Record<string, unknown>; sawArray: boolean }> {
  client.send({ type: "send", instance, action: "report" });
  return (await client.next((f) => f.action === "report" && f.instance === instance)).data;
}

describe("batching between a node and its instances", () => {
  const fx = useCluster({
    extra: {
      tasks: {
        "raw-ipc": { module: RAW_IPC_TASK },
        "raw-ipc-batching": { module: RAW_IPC_TASK, env: { BATCHES: "1" } },
        "sdk-over-ipc": { module: ECHO_SERVICE },
        "sdk-over-stdio": { command: [process.execPath, ECHO_SERVICE] },
        "python-echo": { command: ["python3", PYTHON_ECHO] },
      },
    },
  });

  it("a task that never sends an array gets single messages only, and start offers batches", async () => {
    const client = await fx.cluster.raw();
    const instance = await joinNew(client, "raw-ipc");
    await burstEchoes(client, instance);
    const { start, sawArray } = await report(client, instance);
    assert.equal(start.batch, true, "start carries the offer");
    assert.equal(start.instance, instance);
    assert.equal(sawArray, false, "no array reaches a task that did not take the offer");
    assert.equal((await client.request({ type: "stop", instance })).type, "stopped");
  });

  it("a task that takes the offer gets arrays, and each item it sends is checked on its own", async () => {
    const client = await fx.cluster.raw();
    const instance = await joinNew(client, "raw-ipc-batching");
    await burstEchoes(client, instance);
    assert.equal((await report(client, instance)).sawArray, true, "the node batched a burst");
    const invalidBefore = fx.cluster.nodes[0].counts.invalidOutput;
    client.send({ type: "send", instance, action: "pair" });
    assert.equal((await client.next((f) => f.action === "pair")).data, 1);
    assert.equal((await client.next((f) => f.action === "pair")).data, 2);
    await eventually(() => fx.cluster.nodes[0].counts.invalidOutput === invalidBefore + 1, "the invalid item to be counted");
    assert.equal((await client.request({ type: "stop", instance })).type, "stopped");
  });

  it("a command task gets a burst line by line, in order, and the SDK's burst over stdout arrives whole", async () => {
    const client = await fx.cluster.raw();
    for (const task of ["python-echo", "sdk-over-stdio"]) {
      const instance = await joinNew(client, task);
      // The Python example echoes {action, data, args}.
      await burstEchoes(client, instance, task === "python-echo" ? (data) => data.data : undefined);
      if (task === "sdk-over-stdio") {
        // 300 sends from one handler: one tick of the service, one write on its stdout.
        client.send({ type: "send", instance, action: "burst", data: { count: 300 } });
        const seqs: unknown[] = [];
        while (seqs.length < 300) seqs.push((await client.next((f) => f.action === "burst" && f.instance === instance)).data.seq);
        assert.deepEqual(
          seqs,
          Array.from({ length: 300 }, (_, i) => i),
        );
      }
      assert.equal((await client.request({ type: "stop", instance })).type, "stopped");
    }
  });

  it("what the SDK sends right before the process exits still arrives (both transports)", async () => {
    const client = await fx.cluster.raw();
    for (const task of ["sdk-over-ipc", "sdk-over-stdio"]) {
      const instance = await joinNew(client, task);
      client.send({ type: "send", instance, action: "bye-and-exit" });
      assert.equal((await client.next((f) => f.action === "bye" && f.instance === instance)).type, "message", task);
      assert.equal((await client.next((f) => f.action === "bye-all" && f.instance === instance)).type, "message", task);
      assert.equal((await client.next((f) => f.type === "closed" && f.instance === instance)).reason, "exited", task);
    }
  });
});
