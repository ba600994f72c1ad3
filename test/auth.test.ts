/** Tickets and admin tokens (docs/protocol.md#tickets, docs/security.md): who may connect, launch, join, stop and administer. */
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { SignJWT } from "jose";
import { pino } from "pino";
import { WebSocket } from "ws";
import { assertServable } from "../gateway/servable.js";
import { mintTicket } from "../src/auth/tickets.js";
import { Launcher } from "../src/launcher/launcher.js";
import { ConfigError } from "../src/errors.js";
import { RawClient, testConfig } from "./helpers/cluster.js";
import { cliEnv, runCli } from "./helpers/cli.js";
import { useCluster } from "./helpers/use-cluster.js";

const SECRET = "test-secret-0123456789-abcdef";
const TOKEN_A = "admin-token-aaaaaaaaaaaaaaaa";
const TOKEN_B = "admin-token-bbbbbbbbbbbbbbbb";

/** Every log line the cluster writes, to prove secrets never appear in them. */
const logLines: string[] = [];
const logger = pino({ level: "debug" }, new Writable({ write: (chunk, _enc, done) => (logLines.push(String(chunk)), done()) }));

const ticket = async (sub: string, extra: Record<string, unknown> = {}) => (await mintTicket(SECRET, { sub, ...extra })).ticket;

/** Connects with `ticket` (query or header) and returns the raw socket's first frame and close code. */
function refused(url: string, options: { headers?: Record<string, string> } = {}): Promise<{ frame: any; code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options);
    let frame: any = null;
    ws.on("message", (data) => (frame = JSON.parse(String(data))));
    ws.on("close", (code, reason) => resolve({ frame, code, reason: String(reason) }));
    ws.on("error", reject);
  });
}

describe("tickets and admin tokens", () => {
  const fx = useCluster({ gateways: 2, logger, extra: { auth: { secret: SECRET, adminTokens: [TOKEN_A, TOKEN_B] } } });

  const url = (i = 0) => fx.cluster.gateways[i].url;
  const http = (path: string) => url().replace("ws://", "http://").replace("/v1/connect", path);

  it("closes a connection with 1008 for a missing, forged, expired or malformed ticket", async () => {
    const forged = (await mintTicket("another-secret-0123456789", { sub: "mallory", tasks: ["echo"] })).ticket;
    const expired = await new SignJWT({ tasks: ["echo"] })
      .setProtectedHeader({ alg: "HS256" })
      .setSubject("late")
      .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
      .sign(new TextEncoder().encode(SECRET));
    const noExp = await new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject("forever").sign(new TextEncoder().encode(SECRET));
    const none = "eyJhbGciOiJub25lIn0." + Buffer.from(JSON.stringify({ sub: "x", exp: 9e9, admin: true })).toString("base64url") + ".";
    const cases: [string, RegExp][] = [
      [url(), /ticket is required/],
      [`${url()}?ticket=${forged}`, /signature is not valid/],
      [`${url()}?ticket=${expired}`, /expired/],
      [`${url()}?ticket=${noExp}`, /exp/],
      [`${url()}?ticket=${none}`, /not a valid HS256 JWT/],
      [`${url()}?ticket=garbage`, /not a valid HS256 JWT/],
    ];
    for (const [target, why] of cases) {
      const r = await refused(target);
      assert.equal(r.code, 1008, target);
      assert.equal(r.frame.code, "unauthorized");
      assert.match(r.frame.message, why);
      assert.match(r.reason, why);
    }
  });

  it("accepts a ticket as a query parameter or a bearer header, and scopes launches to its tasks", async () => {
    const alice = await RawClient.connect(url(), { authorization: `Bearer ${await ticket("alice", { tasks: ["echo"] })}` });
    const launched = await alice.request({ type: "launch", task: "echo" });
    assert.equal(launched.type, "launched");
    assert.equal((await alice.request({ type: "launch", task: "heartbeat" })).code, "forbidden");
    assert.equal(await fx.redis.client.hget(`{t}:instance:${launched.instance}`, "ownerUser"), "alice");
    const noTasks = await fx.cluster.raw(1, await ticket("nobody"));
    assert.equal((await noTasks.request({ type: "launch", task: "echo" })).code, "forbidden", "no tasks claim: no launches");
    await alice.request({ type: "stop", instance: launched.instance });
    await alice.close();
  });

  it("scopes joins to the ticket's instances, and allow/deny lists use the user id", async () => {
    const owner = await fx.cluster.raw(0, await ticket("owner", { tasks: ["echo"] }));
    const open = await owner.request({ type: "launch", task: "echo", instance: "room-1", options: { allow: ["bob"], deny: ["carol"] } });
    const other = await owner.request({ type: "launch", task: "echo", instance: "room-2" });
    const bob = await fx.cluster.raw(1, await ticket("bob", { instances: ["room-1"] }));
    assert.equal((await bob.request({ type: "join", instance: "room-1" })).type, "joined");
    assert.equal((await bob.request({ type: "join", instance: "room-2" })).code, "forbidden", "outside the ticket's instances");
    // Outside its instances a ticket cannot tell existing ids from missing ones.
    assert.equal((await bob.request({ type: "join", instance: "no-such-room" })).code, "forbidden");
    assert.equal((await bob.request({ type: "stop", instance: "room-2" })).code, "forbidden");
    assert.equal((await bob.request({ type: "stop", instance: "no-such-room" })).code, "forbidden");
    const scoped = await fx.cluster.raw(1, await ticket("scoped", { tasks: ["echo"], instances: ["mine"] }));
    assert.equal((await scoped.request({ type: "launch", task: "echo", instance: "room-2" })).code, "forbidden", "no probing by launch id");
    const carol = await fx.cluster.raw(1, await ticket("carol"));
    assert.equal((await carol.request({ type: "join", instance: "room-1" })).code, "forbidden", "denied");
    assert.equal((await carol.request({ type: "join", instance: "room-2" })).type, "joined");
    const dave = await fx.cluster.raw(0, await ticket("dave"));
    assert.equal((await dave.request({ type: "join", instance: "room-1" })).code, "forbidden", "not on the allow list");
    bob.send({ type: "send", instance: "room-1", action: "whoami" });
    assert.equal((await bob.next((f) => f.action === "whoami")).data.user, "bob", "the service sees the ticket's user");
    for (const id of [open.instance, other.instance]) await owner.request({ type: "stop", instance: id });
  });

  it("owner rules follow the user across connections; an admin ticket may stop anything", async () => {
    const first = await fx.cluster.raw(0, await ticket("erin", { tasks: ["echo"] }));
    const { instance } = await first.request({ type: "launch", task: "echo" });
    const intruder = await fx.cluster.raw(1, await ticket("frank"));
    assert.equal((await intruder.request({ type: "stop", instance })).code, "forbidden");
    assert.deepEqual(await first.next((f) => f.type === "alert"), { type: "alert", instance, kind: "stop_refused", session: intruder.session, user: "frank" });
    const second = await fx.cluster.raw(1, await ticket("erin"));
    assert.equal((await second.request({ type: "stop", instance })).type, "stopped", "the same user on another connection");

    const { instance: other } = await first.request({ type: "launch", task: "echo" });
    const admin = await fx.cluster.raw(0, await ticket("ops", { admin: true }));
    assert.equal((await admin.request({ type: "launch", task: "heartbeat" })).type, "launched", "admins launch any task");
    assert.equal((await admin.request({ type: "stop", instance: other })).type, "stopped");
    for (const r of await fx.cluster.gateways[0]["requester"].instances.list()) await admin.request({ type: "stop", instance: r.instance });
  });

  it("closes a connection with 1008 when its ticket expires", async () => {
    const shortLived = await fx.cluster.raw(0, await ticket("brief", { ttlSeconds: 1 }));
    await new Promise((r) => shortLived.ws.once("close", r));
    assert.equal(shortLived.closeCode, 1008);
  });

  it("requires an admin token on the admin API, accepting each configured token", async () => {
    const noToken = await fetch(http("/v1/instances"));
    assert.equal(noToken.status, 401);
    assert.match(noToken.headers.get("www-authenticate") ?? "", /^Bearer/);
    assert.equal((await noToken.json()).error.code, "unauthorized");
    assert.equal((await fetch(http("/v1/nodes"), { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status, 401);
    assert.equal((await fetch(http("/v1/nodes"), { headers: { authorization: `Bearer ${await ticket("x", { admin: true })}` } })).status, 401, "a ticket is not an admin token");
    for (const token of [TOKEN_A, TOKEN_B]) assert.equal((await fetch(http("/v1/nodes"), { headers: { authorization: `Bearer ${token}` } })).status, 200);
    assert.equal((await fetch(http("/healthz"))).status, 200, "health needs no token");
  });

  it("mints working tickets through POST /v1/tickets, the Launcher and servman ticket", async () => {
    const post = await fetch(http("/v1/tickets"), {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN_A}`, "content-type": "application/json" },
      body: JSON.stringify({ sub: "gina", tasks: ["echo"], ttlSeconds: 60 }),
    });
    assert.equal(post.status, 201);
    const minted = (await post.json()) as { ticket: string; exp: number };
    assert.ok(minted.exp > Date.now() / 1000);
    const gina = await fx.cluster.raw(0, minted.ticket);
    assert.equal((await gina.request({ type: "launch", task: "echo" })).type, "launched");
    assert.equal((await fetch(http("/v1/tickets"), { method: "POST", headers: { "content-type": "application/json" }, body: "{}" })).status, 401);
    const badBody = await fetch(http("/v1/tickets"), {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN_A}`, "content-type": "application/json" },
      body: JSON.stringify({ sub: "x", root: true }),
    });
    assert.equal(badBody.status, 400);

    const launcher = new Launcher({ redis: fx.redis.url, prefix: "t", secret: SECRET });
    const fromLauncher = await launcher.ticket({ sub: "hank", instances: ["h1"] });
    await launcher.close();
    const hank = await fx.cluster.raw(1, fromLauncher.ticket);
    assert.equal((await hank.request({ type: "join", instance: "h2" })).code, "forbidden");

    const cli = await runCli(["ticket", "ivy", "--tasks", "echo", "--ttl", "120", "--config", fx.cluster.config.file!], { env: cliEnv() });
    assert.equal(cli.code, 0, cli.stderr);
    const ivy = await fx.cluster.raw(1, cli.stdout.trim());
    assert.equal((await ivy.request({ type: "launch", task: "heartbeat" })).code, "forbidden");
    for (const r of await fx.cluster.gateways[0]["requester"].instances.list()) await fx.cluster.gateways[0]["requester"].stop(r.instance, null);
  });

  it("servman heartbeat mints its own tickets against a gateway with auth", async () => {
    const r = await runCli(["heartbeat", "2", "--pings", "2", "--interval", "10", "--gateway", url(), "--config", fx.cluster.config.file!], { env: cliEnv() });
    assert.equal(r.code, 0, r.stdout + r.stderr);
  });

  it("never logs the secret, an admin token or a ticket", () => {
    const log = logLines.join("");
    assert.ok(log.length > 0, "something was logged");
    for (const secret of [SECRET, TOKEN_A, TOKEN_B, "eyJ"]) assert.ok(!log.includes(secret), `log contains ${secret.slice(0, 6)}…`);
  });
});

describe("binding addresses", () => {
  it("allows a non-loopback address only with a ticket secret or --insecure", async () => {
    const { startRedis } = await import("./helpers/redis-server.js");
    const redis = await startRedis();
    try {
      const open = testConfig(redis, { gateway: { host: "0.0.0.0", port: 0 } });
      assert.throws(
        () => assertServable(open),
        (e: ConfigError) => e instanceof ConfigError && e.path.startsWith("gateway.host"),
      );
      assert.doesNotThrow(() => assertServable(testConfig(redis, { gateway: { host: "0.0.0.0", port: 0 }, auth: { secret: SECRET } })));
      assert.doesNotThrow(() => assertServable({ ...open, gateway: { ...open.gateway, insecure: true } }));
      assert.doesNotThrow(() => assertServable(testConfig(redis, { gateway: { host: "::1", port: 0 } })));
    } finally {
      await redis.stop();
    }
  });
});
