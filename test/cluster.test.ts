/** Two gateways and two nodes on one real redis-server, and on a Redis Cluster: the cluster behaves as one. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ServmanClient } from "../src/client/servman-client.js";
import { eventually } from "./helpers/processes.js";
import { TOPOLOGIES } from "./helpers/redis-topology.js";
import { useCluster } from "./helpers/use-cluster.js";

/** Collects the data of every `action` message `client` receives. */
function collect(client: ServmanClient, action: string): unknown[] {
  const seen: unknown[] = [];
  client.on("message", (_i, a, data) => {
    if (a === action) seen.push(data);
  });
  return seen;
}

for (const topology of TOPOLOGIES)
  describe(`two gateways, two nodes (${topology})`, () => {
    const fx = useCluster({
      topology,
      gateways: 2,
      nodes: [
        { id: "node-a", tasks: ["heartbeat"] },
        { id: "node-b", tasks: ["echo", "heartbeat"] },
      ],
    });

    it("serves a client on one gateway from an instance on the other node", async () => {
      const client = await fx.cluster.client(0);
      const { instance, node } = await client.launch("echo");
      assert.equal(node, "node-b");
      const record = await fx.redis.client.hgetall(`{t}:instance:${instance}`);
      assert.equal(record.node, "node-b");
      assert.equal(record.state, "ready");
      assert.equal(record.owner, client.session);
      await client.join(instance);
      const echoes = collect(client, "echo");
      client.send(instance, "echo", "hello");
      await eventually(() => echoes.length === 1, "the echo");
      assert.deepEqual(echoes, ["hello"]);
      await client.stop(instance);
    });

    it("delivers 300 messages each way complete and in order", async () => {
      const client = await fx.cluster.client(1);
      const { instance } = await client.launch("echo");
      await client.join(instance);
      const echoes = collect(client, "echo");
      const bursts = collect(client, "burst");
      for (let seq = 0; seq < 300; seq++) client.send(instance, "echo", { seq });
      client.send(instance, "burst", { count: 300 });
      await eventually(() => echoes.length === 300 && bursts.length === 300, "300 echoes and 300 burst messages");
      assert.deepEqual(
        echoes,
        Array.from({ length: 300 }, (_, seq) => ({ seq })),
      );
      assert.deepEqual(
        bursts,
        Array.from({ length: 300 }, (_, seq) => ({ seq })),
      );
      await client.stop(instance);
    });

    it("broadcasts to clients on both gateways", async () => {
      const a = await fx.cluster.client(0);
      const b = await fx.cluster.client(1);
      const { instance } = await a.launch("echo");
      await a.join(instance);
      await b.join(instance);
      const atA = collect(a, "shout");
      const atB = collect(b, "shout");
      b.send(instance, "shout", "from b");
      await eventually(() => atA.length === 1 && atB.length === 1, "the broadcast on both gateways");
      assert.deepEqual(atA, [{ from: b.session, data: "from b" }]);
      assert.deepEqual(atB, atA);
      await a.stop(instance);
    });

    it("keeps a channel name on messages both ways", async () => {
      const client = await fx.cluster.client(0);
      const { instance } = await client.launch("echo");
      await client.join(instance);
      const got: [unknown, string | undefined][] = [];
      client.on("message", (_i, action, data, channel) => {
        if (action === "echo") got.push([data, channel]);
      });
      client.send(instance, "echo", 1, "chat");
      client.send(instance, "echo", 2);
      await eventually(() => got.length === 2, "two echoes");
      assert.deepEqual(got, [
        [1, "chat"],
        [2, undefined],
      ]);
      await client.stop(instance);
    });

    it("lists both nodes with their tasks", async () => {
      const nodes = await fx.cluster.gateways[0]["requester"].nodes.list();
      assert.deepEqual(
        nodes.map((n) => [n.id, n.tasks]),
        [
          ["node-a", ["heartbeat"]],
          ["node-b", ["echo", "heartbeat"]],
        ],
      );
    });
  });
