/** TLS on gateways: wss:// and https:// from the configured certificate, reloaded without drops. */
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readFileSync } from "node:fs";
import { get } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TLSSocket } from "node:tls";
import { describe, it } from "node:test";
import { WebSocket } from "ws";
import { RawClient, testTasks, writeConfig } from "./helpers/cluster.js";
import { makeCertificate, type Certificate } from "./helpers/certificates.js";
import { freePort, runCli, startServer } from "./helpers/cli.js";
import { eventually } from "./helpers/processes.js";
import { useCluster } from "./helpers/use-cluster.js";

const dir = mkdtempSync(join(tmpdir(), "servman-tls-"));
const first = makeCertificate(dir);
const ca = (c: Certificate) => readFileSync(c.cert);

/** Opens a wss connection trusting `trust`, and returns the client and the certificate it was shown. */
async function connect(url: string, trust: Buffer[]): Promise<{ client: RawClient; fingerprint: string }> {
  const ws = new WebSocket(url, { ca: trust });
  const client = new RawClient(ws);
  const welcome = await client.next((f) => f.type === "welcome");
  client.session = welcome.session;
  const fingerprint = (ws as unknown as { _socket: TLSSocket })._socket.getPeerCertificate().fingerprint256;
  return { client, fingerprint };
}

describe("TLS gateway", () => {
  const fx = useCluster({ extra: { gateway: { host: "127.0.0.1", port: 0, tls: { cert: first.cert, key: first.key } } } });

  it("serves wss:// and https:// with the configured certificate", async () => {
    const url = fx.cluster.gateways[0].url;
    assert.match(url, /^wss:\/\/127\.0\.0\.1:\d+\/v1\/connect$/);
    const { client, fingerprint } = await connect(url, [ca(first)]);
    assert.equal(fingerprint, first.fingerprint);
    const { instance } = await client.request({ type: "launch", task: "echo" });
    await client.request({ type: "join", instance });
    client.send({ type: "send", instance, action: "echo", data: "over tls" });
    assert.equal((await client.next((f) => f.action === "echo")).data, "over tls");
    await client.request({ type: "stop", instance });
    await client.close();
    const status = await new Promise<number>((resolve, reject) => {
      get(url.replace("wss://", "https://").replace("/v1/connect", "/healthz"), { ca: ca(first) }, (res) => (res.resume(), resolve(res.statusCode!))).on("error", reject);
    });
    assert.equal(status, 200);
  });

  it("refuses clients that do not trust the certificate, and plain ws://", async () => {
    const url = fx.cluster.gateways[0].url;
    await assert.rejects(new Promise((resolve, reject) => new WebSocket(url).on("open", resolve).on("error", reject)), /self-signed|certificate/);
    const plain = url.replace("wss://", "ws://");
    await assert.rejects(new Promise((resolve, reject) => new WebSocket(plain).on("open", resolve).on("error", reject)));
  });

  it("reloads a renewed certificate for new connections without dropping open ones", async () => {
    const gateway = fx.cluster.gateways[0];
    const { client: old } = await connect(gateway.url, [ca(first)]);
    const renewedDir = mkdtempSync(join(tmpdir(), "servman-tls-renewed-"));
    const renewed = makeCertificate(renewedDir);
    copyFileSync(renewed.cert, first.cert);
    copyFileSync(renewed.key, first.key);
    gateway.reloadTls();
    const { fingerprint } = await connect(gateway.url, [ca(renewed)]);
    assert.equal(fingerprint, renewed.fingerprint);
    assert.equal((await old.request({ type: "ping" })).type, "pong", "the open connection still works");
    await old.close();
  });
});

describe("TLS from the command line", () => {
  it("reloads on SIGHUP, and refuses an unreadable certificate with exit 2", async () => {
    const { startRedis } = await import("./helpers/redis-server.js");
    const redis = await startRedis();
    const certDir = mkdtempSync(join(tmpdir(), "servman-tls-cli-"));
    const cert = makeCertificate(certDir);
    const port = await freePort();
    const config = writeConfig({ redis: redis.url, gateway: { port, tls: { cert: cert.cert, key: cert.key } }, tasks: testTasks() });
    const server = await startServer(["gateway", "--config", config]);
    try {
      const url = `wss://127.0.0.1:${port}/v1/connect`;
      const original = ca(cert);
      const { client: old } = await connect(url, [original]);
      const renewed = makeCertificate(mkdtempSync(join(tmpdir(), "servman-tls-cli2-")));
      copyFileSync(renewed.cert, cert.cert);
      copyFileSync(renewed.key, cert.key);
      server.child.kill("SIGHUP");
      await eventually(async () => {
        // Trusts both: before the reload lands the old certificate is still served.
        const probe = await connect(url, [original, ca(renewed)]);
        await probe.client.close();
        return probe.fingerprint === renewed.fingerprint;
      }, "the renewed certificate to be served");
      assert.equal((await old.request({ type: "ping" })).type, "pong");
      await old.close();
    } finally {
      assert.equal(await server.stop("SIGTERM"), 0);
    }
    const missing = writeConfig({ redis: redis.url, gateway: { port, tls: { cert: "./nope.pem", key: cert.key } } });
    const r = await runCli(["gateway", "--config", missing]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /gateway\.tls\.cert: cannot read/);
    await redis.stop();
  });
});
