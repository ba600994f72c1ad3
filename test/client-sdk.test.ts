/** The client SDK against a real cluster: promises, coded errors, events and action handlers. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ServmanClient } from "../src/client/servman-client.js";
import { action } from "../src/actions.js";
import { ServmanError } from "../src/errors.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

class GameClient extends ServmanClient {
  readonly echoes: unknown[] = [];
  readonly shouts: [string, unknown][] = [];

  @action()
  echo(_instance: string, data: unknown): void {
    this.echoes.push(data);
  }

  @action("shout")
  onShout(instance: string, data: unknown): void {
    this.shouts.push([instance, data]);
  }
}

describe("ServmanClient", () => {
  const fx = useCluster();

  it("dispatches service messages to @action methods of a subclass", async () => {
    const client = new GameClient(fx.cluster.gateways[0].url);
    const welcome = await client.connect();
    assert.equal(welcome.session, client.session);
    assert.equal(welcome.gateway, fx.cluster.gateways[0].id);
    const { instance } = await client.launch("echo", { args: { x: 1 } });
    await client.join(instance);
    client.send(instance, "echo", { n: 1 });
    client.send(instance, "shout", "hey");
    await eventually(() => client.echoes.length === 1 && client.shouts.length === 1, "both handlers");
    assert.deepEqual(client.echoes, [{ n: 1 }]);
    assert.deepEqual(client.shouts, [[instance, { from: client.session, data: "hey" }]]);
    assert.deepEqual(client.actions().sort(), ["echo", "shout"]);
    await client.stop(instance);
    await client.close();
    await client.close();
  });

  it("rejects requests with ServmanErrors carrying the protocol's code", async () => {
    const client = await fx.cluster.client();
    await assert.rejects(client.launch("nope"), (e: ServmanError) => e instanceof ServmanError && e.code === "unknown_task");
    await assert.rejects(client.join("ghost"), (e: ServmanError) => e.code === "unknown_instance");
    await assert.rejects(client.leave("ghost"), (e: ServmanError) => e.code === "not_joined");
    const { instance } = await client.launch("echo");
    await assert.rejects(client.join(instance, "reject"), (e: ServmanError) => e.code === "join_rejected" && /asked to be rejected/.test(e.message));
    const errors: ServmanError[] = [];
    client.on("error", (e) => errors.push(e));
    client.send(instance, "echo", 1);
    await eventually(() => errors.length === 1, "the not_joined error event");
    assert.equal(errors[0].code, "not_joined");
    assert.ok((await client.ping()) >= 0);
    await client.stop(instance);
  });

  it("emits closed and alert events, and handlers can be removed", async () => {
    const owner = await fx.cluster.client();
    const other = await fx.cluster.client();
    const { instance } = await owner.launch("echo");
    await other.join(instance);
    const alerts: unknown[] = [];
    owner.on("alert", (a) => alerts.push(a));
    await assert.rejects(other.stop(instance), (e: ServmanError) => e.code === "forbidden");
    await eventually(() => alerts.length === 1, "the alert");
    assert.deepEqual(alerts[0], { type: "alert", instance, kind: "stop_refused", session: other.session, user: null });
    const closed: [string, string][] = [];
    const off = other.on("closed", (i, reason) => closed.push([i, reason]));
    await owner.stop(instance);
    await eventually(() => closed.length === 1, "closed");
    assert.deepEqual(closed, [[instance, "stopped"]]);
    off();
  });

  it("rejects pending requests with unavailable when the connection drops", async () => {
    const client = await fx.cluster.client();
    const launch = client.launch("echo", { args: { readyDelayMs: 300 } });
    const disconnects: number[] = [];
    client.on("disconnect", (code) => disconnects.push(code));
    await client.close();
    await assert.rejects(launch, (e: ServmanError) => e.code === "unavailable");
    assert.deepEqual(disconnects, [1000]);
    assert.throws(
      () => client.send("x", "y"),
      (e: ServmanError) => e.code === "unavailable",
    );
    // The launch itself went on; stop what it started.
    const requester = fx.cluster.gateways[0]["requester"];
    await eventually(async () => (await requester.instances.list()).filter((r) => r.state === "ready").length === 1, "the launch to finish");
    for (const r of await requester.instances.list()) await requester.stop(r.instance, null);
  });

  it("fails to connect with unavailable when nothing listens", async () => {
    const client = new ServmanClient("ws://127.0.0.1:1/v1/connect");
    await assert.rejects(client.connect(), (e: ServmanError) => e.code === "unavailable");
  });
});
