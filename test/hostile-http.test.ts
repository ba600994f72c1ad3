/**
 * The gateway's HTTP and socket edge under hostile input (docs/security.md#http-and-sockets):
 * malformed request targets, request heads that never end, bodies sent to be refused, deep JSON,
 * forged Host and Origin headers, peers that vanish, and an admin API with no token on a public
 * address.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { pino } from "pino";
import { WebSocket } from "ws";
import { Gateway } from "../gateway/gateway.js";
import type { ServmanConfig } from "../src/config/options.js";
import { makeCertificate } from "./helpers/certificates.js";
import { RawClient, testConfig } from "./helpers/cluster.js";
import { eventually } from "./helpers/processes.js";
import { openSocket, parseResponse, rawRequest, readUntilClosed, requestText } from "./helpers/raw-http.js";
import { startRedis } from "./helpers/redis-server.js";
import { useCluster } from "./helpers/use-cluster.js";

const TOKEN = "edge-admin-token-0123456789";
const SECRET = "edge-secret-0123456789-abcdef";

const portOf = (gateway: Gateway) => Number(new URL(gateway.url).port);

/** How a WebSocket connection attempt ended: welcome, an HTTP status, a close code, or an error. */
function attempt(
  url: string,
  options: ConstructorParameters<typeof WebSocket>[2] = {},
): Promise<{ outcome: "welcome" | "status" | "closed" | "error"; status?: number; code?: number; frame?: any; ws: WebSocket }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, options);
    let frame: any;
    ws.on("message", (d) => {
      frame = JSON.parse(String(d));
      if (frame.type === "welcome") resolve({ outcome: "welcome", ws });
    });
    ws.on("unexpected-response", (_req, res) => {
      resolve({ outcome: "status", status: res.statusCode ?? 0, ws });
      res.resume();
      ws.terminate();
    });
    ws.on("close", (code) => resolve({ outcome: "closed", code, frame, ws }));
    ws.on("error", () => resolve({ outcome: "error", ws }));
  });
}

/**
 * Sends `head` and then body bytes as fast as the server takes them, until it closes the
 * connection or `maxBytes` are sent. Says whether the server closed it, and what it answered.
 */
async function flood(port: number, head: string, maxBytes: number): Promise<{ closedByServer: boolean; written: number; status: number; headers: Record<string, string> }> {
  const socket = await openSocket(port);
  let closed = false;
  const received = readUntilClosed(socket).finally(() => (closed = true));
  socket.write(head);
  const data = Buffer.alloc(64 * 1024, 0x20);
  // A chunked body in chunks of 64 KiB each, or the bytes a Content-Length announced.
  const chunk = /transfer-encoding: chunked/i.test(head) ? Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from("\r\n")]) : data;
  let written = 0;
  while (!closed && written < maxBytes) {
    written += chunk.length;
    if (!socket.write(chunk)) await new Promise((r) => (socket.once("drain", r), socket.once("close", r)));
  }
  const closedByServer = closed;
  socket.destroy();
  const response = parseResponse(await received);
  return { closedByServer, written, status: response.status, headers: response.headers };
}

describe("hostile HTTP on an open loopback gateway", () => {
  const fx = useCluster({ extra: { gateway: { host: "127.0.0.1", port: 0, limits: { pingIntervalMs: 100, pongTimeoutMs: 200 } } } });
  const port = () => portOf(fx.cluster.gateways[0]);

  it("answers 400 to request targets that are not a path, and keeps serving", async () => {
    for (const target of ["//", "//x:99999/", "http://[::1/", "//@/v1/nodes", "/\\x:99999/", "*"]) {
      const res = await rawRequest(port(), requestText(target));
      assert.equal(res.status, 400, `${target}: ${res.raw}`);
      assert.equal(JSON.parse(res.body).error.code, "bad_request", target);
    }
    // The same targets as WebSocket upgrades.
    for (const target of ["//", "//x:99999/"]) {
      const res = await rawRequest(port(), requestText(target, { headers: ["Upgrade: websocket", "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="] }));
      assert.ok(res.status === 400 || res.status === 404, `${target}: ${res.raw}`);
    }
    assert.equal((await rawRequest(port(), requestText("/healthz"))).status, 200);
  });

  it("refuses admin bodies nested deeper than gateway.limits.maxDepth with 400", async () => {
    const deep = `{"task":"echo","args":{"a":${"[".repeat(40)}${"]".repeat(40)}}}`;
    const res = await rawRequest(port(), requestText("/v1/instances", { method: "POST", headers: ["Content-Type: application/json"], body: deep }));
    assert.equal(res.status, 400, res.raw);
    assert.equal(JSON.parse(res.body).error.code, "bad_request");
    assert.match(JSON.parse(res.body).error.message, /deep/);
  });

  it("answers only Host names that are its own: 421 for others, on HTTP and upgrades", async () => {
    for (const host of ["127.0.0.1", `127.0.0.1:${port()}`, "localhost", `localhost:${port()}`, "127.9.9.9", "[::1]", `[::1]:${port()}`, "LOCALHOST."]) {
      assert.equal((await rawRequest(port(), requestText("/v1/nodes", { host }))).status, 200, host);
    }
    for (const host of ["evil.example", `evil.example:${port()}`, "127.0.0.1.evil.example", "[::2]:80", ""]) {
      const res = await rawRequest(port(), requestText("/v1/nodes", { host }));
      assert.equal(res.status, 421, `${host}: ${res.raw}`);
      assert.equal(JSON.parse(res.body).error.code, "bad_request");
    }
    // No Host at all (HTTP/1.0 health checkers) is no browser page: served.
    assert.equal((await rawRequest(port(), "GET /healthz HTTP/1.0\r\n\r\n")).status, 200);
    const upgrade = await attempt(fx.cluster.gateways[0].url, { headers: { host: `rebind.example:${port()}` } });
    assert.equal(upgrade.status, 421);
  });

  it("checks the Origin of upgrades: its own hosts pass, others get 403, none (non-browser) passes", async () => {
    const url = fx.cluster.gateways[0].url;
    const foreign = await attempt(url, { origin: "https://evil.example" });
    assert.equal(foreign.status, 403);
    for (const origin of [`http://localhost:${port()}`, "http://127.0.0.1:3000", undefined]) {
      const ok = await attempt(url, origin === undefined ? {} : { origin });
      assert.equal(ok.outcome, "welcome", String(origin));
      ok.ws.close();
    }
  });

  it("answers 500 to a bug in the HTTP or upgrade handler, counts it, and goes on", async () => {
    const gateway = fx.cluster.gateways[0];
    const hostCheck = (gateway as any).hostCheck;
    const original = hostCheck.hostRefusal;
    hostCheck.hostRefusal = () => {
      throw new Error("a bug");
    };
    try {
      const res = await rawRequest(port(), requestText("/healthz"));
      assert.equal(res.status, 500);
      assert.equal(JSON.parse(res.body).error.code, "internal");
      assert.equal((await attempt(gateway.url)).status, 500);
    } finally {
      hostCheck.hostRefusal = original;
    }
    const metrics = await gateway.metrics.registry.metrics();
    assert.match(metrics, /^servman_gateway_internal_errors_total\{where="http"\} 1$/m);
    assert.match(metrics, /^servman_gateway_internal_errors_total\{where="upgrade"\} 1$/m);
    assert.equal((await rawRequest(port(), requestText("/healthz"))).status, 200);
  });

  it("pings connections: one that never answers is closed, one that does stays", async () => {
    const good = await fx.cluster.raw();
    const mute = new RawClient(new WebSocket(fx.cluster.gateways[0].url, { autoPong: false }));
    await mute.next((f) => f.type === "welcome");
    let pinged = 0;
    mute.ws.on("ping", () => pinged++);
    await eventually(() => mute.closeCode !== null, "the mute connection to be closed");
    assert.ok(pinged >= 1, "it was pinged");
    assert.equal(mute.closeCode, 1006, "terminated: no close handshake with a vanished peer");
    assert.equal(good.ws.readyState, WebSocket.OPEN);
    assert.equal((await good.request({ type: "ping" })).type, "pong");
    assert.match(await fx.cluster.gateways[0].metrics.registry.metrics(), /^servman_gateway_ping_timeouts_total 1$/m);
    await good.close();
  });

  it("a connection closed for not answering is dropped, not ended: its session can be resumed", async () => {
    const gone = await fx.cluster.raw();
    const launched = await gone.request({ type: "launch", task: "echo" }, 30_000);
    assert.equal(launched.type, "launched", JSON.stringify(launched));
    assert.equal((await gone.request({ type: "join", instance: launched.instance })).type, "joined");
    const timeouts = async () => Number(/^servman_gateway_ping_timeouts_total (\d+)$/m.exec(await fx.cluster.gateways[0].metrics.registry.metrics())?.[1]);
    const before = await timeouts();
    // The peer vanishes: it reads nothing more, so it never sees a ping, let alone answers it.
    (gone.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    await eventually(async () => (await timeouts()) > before, "the silent connection to be terminated");
    const again = await fx.cluster.raw();
    const resumed = await again.request({ type: "resume", session: gone.welcome.session, resume: gone.welcome.resume });
    assert.equal(resumed.type, "resumed", JSON.stringify(resumed));
    assert.deepEqual(resumed.instances, [launched.instance]);
    assert.equal((await again.request({ type: "stop", instance: launched.instance })).type, "stopped");
    gone.ws.terminate();
    await again.close();
  });
});

describe("hostile HTTP on a gateway with auth", () => {
  const fx = useCluster({ nodes: [], extra: { auth: { secret: SECRET, adminTokens: [TOKEN] } } });
  const port = () => portOf(fx.cluster.gateways[0]);
  const head = (headers: string[]) => ["POST /v1/instances HTTP/1.1", "Host: 127.0.0.1", ...headers, "", ""].join("\r\n");
  const MAX = 32 * 1024 * 1024;

  it("answers an unauthenticated POST and closes, without reading its body", async () => {
    const res = await flood(port(), head(["Content-Type: application/json", "Content-Length: 1000000000"]), MAX);
    assert.equal(res.status, 401);
    assert.equal(res.headers.connection, "close");
    assert.ok(res.closedByServer, `the server closed the connection (sent ${res.written} bytes)`);
  });

  it("closes too on a too large or wrongly typed body, and on an unknown route with a body", async () => {
    const cases: [string[], number][] = [
      [[`Authorization: Bearer ${TOKEN}`, "Content-Type: application/json", "Transfer-Encoding: chunked"], 413],
      [[`Authorization: Bearer ${TOKEN}`, "Content-Type: text/plain", "Content-Length: 1000000000"], 400],
    ];
    for (const [headers, status] of cases) {
      const res = await flood(port(), head(headers), MAX);
      assert.equal(res.status, status, headers.join(" "));
      assert.ok(res.closedByServer, `${headers.join(" ")}: the server closed the connection (sent ${res.written} bytes)`);
    }
    const unknown = await flood(port(), head([`Authorization: Bearer ${TOKEN}`, "Content-Length: 1000000000"]).replace("/v1/instances", "/v1/nowhere"), MAX);
    assert.equal(unknown.status, 404);
    assert.ok(unknown.closedByServer);
  });
});

describe("request heads that never end", () => {
  const limits = { maxConnectionsPerIp: 2, headersTimeoutMs: 300 };
  const fx = useCluster({ nodes: [], extra: { gateway: { host: "127.0.0.1", port: 0, limits } } });
  const port = () => portOf(fx.cluster.gateways[0]);

  it("count against maxConnectionsPerIp until headersTimeoutMs closes them", async () => {
    const slow = [];
    for (let i = 0; i < limits.maxConnectionsPerIp; i++) {
      const socket = await openSocket(port());
      socket.write("GET /v1/connect HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      slow.push({ socket, received: readUntilClosed(socket) });
    }
    // The slots are taken: one more is let in only to be told why (1008, rate_limited) ...
    const told = await attempt(fx.cluster.gateways[0].url);
    assert.equal(told.outcome, "closed");
    assert.equal(told.code, 1008);
    assert.equal(told.frame?.code, "rate_limited");
    // ... and past that spare one, sockets are closed as soon as they are accepted.
    const extra = await openSocket(port());
    extra.write("GET /v1/connect HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    slow.push({ socket: extra, received: readUntilClosed(extra) });
    assert.ok(["error", "closed"].includes((await attempt(fx.cluster.gateways[0].url)).outcome));
    assert.match(await fx.cluster.gateways[0].metrics.registry.metrics(), /servman_gateway_limited_total\{limit="connections_per_ip"\} [2-9]/);
    // headersTimeoutMs ends every slow socket (Node answers 408) and frees the slots.
    const raw = await Promise.race([Promise.all(slow.map((s) => s.received)), new Promise<null>((r) => setTimeout(() => r(null), 20_000).unref())]);
    assert.ok(raw !== null, "the slow sockets were closed");
    assert.ok(
      raw.some((text) => text.startsWith("HTTP/1.1 408")),
      `a 408 was sent: ${JSON.stringify(raw)}`,
    );
    const client = await fx.cluster.raw();
    assert.equal((await client.request({ type: "ping" })).type, "pong");
    await client.close();
    await eventually(async () => (await rawRequest(port(), requestText("/healthz"))).status === 200, "/healthz to answer");
  });
});

describe("TLS handshakes that never start", () => {
  const certificate = makeCertificate(mkdtempSync(join(tmpdir(), "servman-edge-tls-")));
  const limits = { maxConnectionsPerIp: 1, headersTimeoutMs: 300 };
  const fx = useCluster({ nodes: [], extra: { gateway: { host: "127.0.0.1", port: 0, limits, tls: { cert: certificate.cert, key: certificate.key } } } });

  it("count from accept, are refused past the limit, and are closed after headersTimeoutMs", async () => {
    const port = portOf(fx.cluster.gateways[0]);
    // Plain TCP, no ClientHello: the limit's socket and the spare one are held ...
    const held = [await openSocket(port), await openSocket(port)].map(readUntilClosed);
    // ... and a third (a real client) is closed at accept, before any TLS.
    assert.ok(["error", "closed"].includes((await attempt(fx.cluster.gateways[0].url, { ca: readFileSync(certificate.cert) })).outcome));
    const closed = await Promise.race([Promise.all(held), new Promise<null>((r) => setTimeout(() => r(null), 20_000).unref())]);
    assert.ok(closed !== null, "the silent sockets were closed");
    const ok = await attempt(fx.cluster.gateways[0].url, { ca: readFileSync(certificate.cert) });
    assert.equal(ok.outcome, "welcome");
    ok.ws.close();
  });
});

describe("a public address without admin tokens", () => {
  it("serves no admin API, says so once at startup, and checks Host against its interfaces", async () => {
    const redis = await startRedis();
    const lines: string[] = [];
    const logger = pino({ level: "info" }, new Writable({ write: (chunk, _enc, done) => (lines.push(String(chunk)), done()) }));
    const base = testConfig(redis, { gateway: { host: "0.0.0.0", port: 0 } });
    const config: ServmanConfig = { ...base, gateway: { ...base.gateway, insecure: true } };
    const gateway = new Gateway({ config, logger, processMetrics: false });
    try {
      await gateway.listen();
      const port = portOf(gateway);
      const res = await rawRequest(port, requestText("/v1/nodes"));
      assert.equal(res.status, 403, res.raw);
      assert.equal(JSON.parse(res.body).error.code, "forbidden");
      assert.match(JSON.parse(res.body).error.message, /auth\.adminTokens/);
      assert.equal((await rawRequest(port, requestText("/v1/tickets", { method: "POST", headers: ["Content-Type: application/json"], body: "{}" }))).status, 403);
      assert.equal((await rawRequest(port, requestText("/healthz"))).status, 200);
      assert.equal(lines.filter((l) => /auth\.adminTokens/.test(l)).length, 1, "one warning at startup");
      const own = Object.values(networkInterfaces())
        .flat()
        .find((a) => a && a.family === "IPv4" && !a.internal);
      if (own) assert.equal((await rawRequest(port, requestText("/healthz", { host: `${own.address}:${port}` }))).status, 200, own.address);
      assert.equal((await rawRequest(port, requestText("/healthz", { host: "evil.example" }))).status, 421);
    } finally {
      await gateway.close();
      await redis.stop();
    }
  });

  it("serves it with an admin token", async () => {
    const redis = await startRedis();
    const base = testConfig(redis, { gateway: { host: "0.0.0.0", port: 0 }, auth: { secret: SECRET, adminTokens: [TOKEN] } });
    const gateway = new Gateway({ config: base, processMetrics: false });
    try {
      await gateway.listen();
      const port = portOf(gateway);
      assert.equal((await rawRequest(port, requestText("/v1/nodes"))).status, 401);
      assert.equal((await rawRequest(port, requestText("/v1/nodes", { headers: [`Authorization: Bearer ${TOKEN}`] }))).status, 200);
    } finally {
      await gateway.close();
      await redis.stop();
    }
  });
});
