/** A draining gateway: clients are closed with 1001, /healthz answers 503 and upgrades are refused meanwhile. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { useCluster } from "./helpers/use-cluster.js";

describe("gateway drain", () => {
  const fx = useCluster({ gateways: 2 });

  it("closes clients with 1001, says 503 while they leave, and their instances carry on", async () => {
    const draining = fx.cluster.gateways[0];
    const base = draining.url.replace("ws://", "http://").replace("/v1/connect", "");
    const polite = await fx.cluster.raw(0);
    const { instance } = await polite.request({ type: "launch", task: "echo" });
    // A client that stops reading never answers the close: it keeps the drain waiting.
    const stuck = await fx.cluster.raw(0);
    (stuck.ws as unknown as { _socket: { pause(): void } })._socket.pause();

    const drained = draining.drain(1500);
    await new Promise((r) => polite.ws.once("close", r));
    assert.equal(polite.closeCode, 1001);
    const health = await fetch(`${base}/healthz`);
    assert.equal(health.status, 503);
    assert.deepEqual(await health.json(), { status: "unavailable", reason: "draining" });
    const upgrade = await fetch(`${base}/v1/connect`, {
      headers: { connection: "Upgrade", upgrade: "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==" },
    }).catch((e: Error) => e);
    assert.ok(upgrade instanceof Error || upgrade.status === 503, "no new connection while draining");
    await drained;
    stuck.ws.terminate();

    // The instance does not belong to the gateway: a client on another gateway still reaches it.
    const again = await fx.cluster.raw(1);
    await again.request({ type: "join", instance });
    again.send({ type: "send", instance, action: "echo", data: "still here" });
    assert.equal((await again.next((f) => f.action === "echo")).data, "still here");
    assert.equal((await again.request({ type: "stop", instance })).code, "forbidden", "the owner's session ended with its gateway");
    await fx.cluster.gateways[1]["requester"].stop(instance, null);
  });
});
