/**
 * SDK rough edges (#16): the client's per-instance handles, one handler per action, `sendChecked`,
 * and the service SDK's bounded output; against a real cluster (gateway, node, redis-server, echo
 * service processes).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import { ServmanClient } from "../src/client/servman-client.js";
import { action } from "../src/actions.js";
import { ServmanError } from "../src/errors.js";
import { Keys } from "../src/keys.js";
import { InstanceLogs } from "../src/registry/instance-logs.js";
import { Service } from "../src/service/service.js";
import { ROOT, testTasks } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

const isCode = (code: string) => (e: unknown) => e instanceof ServmanError && e.code === code;

class BaseClient extends ServmanClient {
  readonly got: string[] = [];
  @action()
  echo(): void {
    this.got.push("base");
  }
}

class DerivedClient extends BaseClient {
  @action()
  override echo(): void {
    this.got.push("derived");
  }
}

describe("ServmanClient per-instance handles and checked sends", () => {
  // A low rate so a burst of checked sends meets rate_limited.
  // A plain JavaScript service (.mjs, `servman/service` by the package's own name) as a module task.
  const plainJs = { module: join(ROOT, "test/fixtures/plain-service.mjs") };
  const fx = useCluster({ extra: { gateway: { host: "127.0.0.1", port: 0, limits: { messagesPerSecond: 50, burst: 20 } }, tasks: { ...testTasks(), "plain-js": plainJs } } });

  it("routes each instance's messages to its own handle, before the client-wide handler", async () => {
    const client = new ServmanClient(fx.cluster.gateways[0].url);
    await client.connect();
    const a = (await client.launch("echo")).instance;
    const b = (await client.launch("echo")).instance;
    const log: string[] = [];
    const roomA = client.instance(a);
    const roomB = client.instance(b);
    assert.equal(client.instance(a), roomA, "one handle per instance");
    roomA.on("echo", (data) => log.push(`a:${String(data)}`));
    roomB.on("echo", (data, channel) => log.push(`b:${String(data)}:${channel}`));
    client.handle("echo", (instance, data) => log.push(`all:${instance === a ? "a" : "b"}:${String(data)}`));
    await roomA.join();
    await roomB.join();
    roomA.send("echo", 1);
    await eventually(() => log.length === 2, "a's echo");
    roomB.send("echo", 2, "team");
    await eventually(() => log.length === 4, "b's echo");
    assert.deepEqual(log, ["a:1", "all:a:1", "b:2:team", "all:b:2"]);

    // An action only the client-wide handler knows still arrives; one nobody handles is unknown.
    const messages: string[] = [];
    client.on("message", (_i, act) => messages.push(act));
    roomA.send("shout", "x");
    await eventually(() => messages.includes("shout"), "the shout");

    // Leaving drops the handle's handlers: the next handle starts empty.
    await roomB.leave();
    assert.deepEqual(roomB.actions(), []);
    assert.notEqual(client.instance(b), roomB);
    assert.deepEqual(client.instance(b).actions(), []);
    // So does hearing the instance closed.
    const closed = new Promise((resolve) => client.on("closed", resolve));
    await roomA.stop();
    await closed;
    assert.deepEqual(client.instance(a).actions(), []);
    await client.stop(b);
    await client.close();
  });

  it("throws on a second handler for one action unless replace is asked for", () => {
    const client = new ServmanClient(fx.cluster.gateways[0].url);
    const first = () => {};
    client.handle("move", first);
    assert.throws(() => client.handle("move", () => {}), isCode("bad_request"));
    assert.throws(() => client.handle("move", () => {}), /already has a handler; pass \{ replace: true \}/);
    client.handle("move", () => {}, { replace: true });
    assert.equal(client.unhandle("move"), true);
    client.handle("move", first);
    assert.deepEqual(client.actions(), ["move"]);

    const room = client.instance("some-instance");
    const off = room.on("move", () => {});
    assert.throws(() => room.on("move", () => {}), /for instance some-instance/);
    room.on("move", () => {}, { replace: true });
    off(); // removes only the handler it registered: the replacement stays
    assert.deepEqual(room.actions(), ["move"]);
    assert.equal(room.off("move"), true);
    room.on("move", () => {});

    // Services follow the same rule.
    const service = new Service();
    service.handle("x", () => {});
    assert.throws(() => service.handle("x", () => {}), isCode("bad_request"));
  });

  it("lets a subclass's @action method override its parent's", async () => {
    const client = new DerivedClient(fx.cluster.gateways[0].url);
    await client.connect();
    const { instance } = await client.launch("echo");
    await client.join(instance);
    client.send(instance, "echo", 1);
    await eventually(() => client.got.length === 1, "the echo");
    assert.deepEqual(client.got, ["derived"]);
    await client.stop(instance);
    await client.close();
  });

  it("sendChecked resolves once published and rejects with the gateway's error for that send", async (t) => {
    const client = await fx.cluster.client();
    const errors: ServmanError[] = [];
    client.on("error", (e) => errors.push(e));
    const { instance } = await client.launch("echo");
    const room = client.instance(instance);
    await assert.rejects(room.sendChecked("echo", 1), isCode("not_joined"));
    // Held behind a join in flight, then published once it succeeds.
    const echoes: unknown[] = [];
    room.on("echo", (data) => echoes.push(data));
    await Promise.all([room.join(), room.sendChecked("echo", 2)]);
    await eventually(() => echoes.length === 1, "the echo");
    assert.deepEqual(echoes, [2]);
    // Over the rate: some are refused, each on its own promise; none is lost or unanswered.
    // 30 in one tick against a burst of 20: at least 10 are over.
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => room.sendChecked("echo", 100 + i)));
    const refused = results.filter((r) => r.status === "rejected");
    assert.ok(refused.length > 0, "some sends were over the rate");
    for (const r of refused) if (r.status === "rejected") assert.ok(isCode("rate_limited")(r.reason));
    const sent = results.length - refused.length;
    await eventually(() => echoes.length === 1 + sent, "an echo for every send that resolved");
    t.diagnostic(`${sent} of 30 published, ${refused.length} rate_limited`);
    assert.deepEqual(errors, [], "checked sends' errors are theirs, not error events");
    await new Promise((r) => setTimeout(r, 1_100)); // the bucket refills: the stop is not refused
    await client.stop(instance);
  });

  it("sendChecked rejects for a join that fails, and plain send stays fire-and-forget", async () => {
    const client = await fx.cluster.client();
    const errors: ServmanError[] = [];
    client.on("error", (e) => errors.push(e));
    const { instance } = await client.launch("echo");
    const [join, send] = await Promise.allSettled([client.join(instance, "reject"), client.sendChecked(instance, "echo", 1)]);
    assert.ok(join.status === "rejected" && isCode("join_rejected")(join.reason));
    assert.ok(send.status === "rejected" && isCode("not_joined")(send.reason));
    // A plain send returns nothing to await: its error is an event, never an unhandled rejection.
    client.send(instance, "echo", 1);
    await eventually(() => errors.length === 1, "the not_joined event");
    assert.equal(errors[0].code, "not_joined");
    await client.stop(instance);
  });

  it("a service's output is bounded: past maxPendingSends sends are dropped and counted, and drain() waits for room", async (t) => {
    const client = await fx.cluster.client();
    const { instance } = await client.launch("echo");
    const room = client.instance(instance);
    const floods: number[] = [];
    room.on("overflow", (data) => floods.push((data as { i: number }).i));
    const flooded = new Promise<Record<string, unknown>>((resolve) => room.on("overflowed", (data) => resolve(data as Record<string, unknown>)));
    await room.join();
    // 200 sends of 32 KiB in one tick, at most 40 waiting: 40 go (in order), 160 are dropped.
    room.send("overflow", { count: 200, bytes: 32 * 1024, max: 40 });
    const report = await flooded;
    t.diagnostic(JSON.stringify(report));
    assert.deepEqual(report, { droppedInTick: 160, dropped: 160, full: true, writable: true });
    await eventually(() => floods.length === 40, "the 40 kept sends");
    assert.deepEqual(floods, [...Array(40).keys()]);
    const logs = new InstanceLogs(fx.redis.client, new Keys("t"));
    // The instance's log says when dropping started, and how many went once sends were accepted again.
    const logged = async (pattern: RegExp) => (await logs.read(instance)).some((l) => pattern.test(l.text));
    await eventually(() => logged(/dropping sends until there is room/), "the drop in the log");
    await eventually(() => logged(/dropped 160 sends while the output was full/), "the count in the log");
    await new Promise((r) => setTimeout(r, 1_100)); // the bucket refills: the stop is not refused
    await client.stop(instance);
  });

  it("runs a service written in plain JavaScript with handle() (a .mjs module task)", async () => {
    const client = await fx.cluster.client();
    const { instance } = await client.launch("plain-js", { args: { greeting: "hi" } });
    const room = client.instance(instance);
    await assert.rejects(room.join("please"), (e: unknown) => isCode("join_rejected")(e) && /say the word/.test((e as Error).message));
    const greeted = new Promise((resolve) => room.on("greeted", resolve));
    const heard = new Promise((resolve) => room.on("heard", resolve));
    await room.join("let me in");
    room.send("greet", "ana");
    room.send("everyone", 42);
    assert.equal(await greeted, "hi, ana");
    assert.deepEqual(await heard, { from: client.session, data: 42 });
    await room.stop();
  });
});
