/** Redis with a password, with an ACL user, and over TLS (rediss://): the whole stack works. */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { startCluster } from "./helpers/cluster.js";
import { makeCertificate } from "./helpers/certificates.js";
import { cliEnv, runCli } from "./helpers/cli.js";
import { descendants } from "./helpers/processes.js";
import { startRedis, type RedisServerOptions, type TestRedis } from "./helpers/redis-server.js";

/** Launches, joins and echoes through a cluster on `redis`, then closes it. */
async function roundTrip(redis: TestRedis): Promise<void> {
  const cluster = await startCluster(redis);
  try {
    const client = await cluster.raw();
    const { instance } = await client.request({ type: "launch", task: "echo" });
    await client.request({ type: "join", instance });
    client.send({ type: "send", instance, action: "echo", data: "through an authenticated Redis" });
    assert.equal((await client.next((f) => f.action === "echo")).data, "through an authenticated Redis");
    assert.equal((await client.request({ type: "stop", instance })).type, "stopped");
  } finally {
    await cluster.close();
  }
}

async function withRedis(options: RedisServerOptions, body: (redis: TestRedis) => Promise<void>): Promise<void> {
  const redis = await startRedis(options);
  try {
    await body(redis);
  } finally {
    await redis.stop();
  }
  assert.deepEqual(descendants(), []);
}

describe("Redis authentication and TLS", () => {
  it("works with a password, and says so clearly when it is wrong (without printing it)", async () => {
    await withRedis({ args: ["--requirepass", "s3cret-pass"], url: (p) => `redis://:s3cret-pass@127.0.0.1:${p}` }, async (redis) => {
      await roundTrip(redis);
      const wrong = redis.url.replace("s3cret-pass", "guessed-pass");
      const r = await runCli(["ls", "--redis", wrong], { env: cliEnv() });
      assert.equal(r.code, 1);
      assert.match(r.stderr, /refused the credentials/);
      assert.ok(!r.stderr.includes("guessed-pass"), "the password is not printed");
      assert.match(r.stderr, /redis:\/\/:\*\*\*@127\.0\.0\.1/);
    });
  });

  it("works as an ACL user", async () => {
    const acl = ["--user", "default", "off", "--user", "servman", "on", ">servman-pass", "~*", "&*", "+@all"];
    await withRedis({ args: acl, url: (p) => `redis://servman:servman-pass@127.0.0.1:${p}` }, roundTrip);
  });

  it("works over TLS (rediss://) with the CA given to Node, and explains a certificate failure", async () => {
    const cert = makeCertificate(mkdtempSync(join(tmpdir(), "servman-redis-tls-")));
    const args = ["--tls-port", "{port}", "--tls-cert-file", cert.cert, "--tls-key-file", cert.key, "--tls-ca-cert-file", cert.cert, "--tls-auth-clients", "no"];
    await withRedis({ args, url: (p) => `rediss://127.0.0.1:${p}`, clientOptions: { tls: { ca: readFileSync(cert.cert) } } }, async (redis) => {
      const ok = await runCli(["heartbeat", "3", "--pings", "2", "--interval", "10", "--redis", redis.url], { env: cliEnv({ NODE_EXTRA_CA_CERTS: cert.cert }) });
      assert.equal(ok.code, 0, ok.stdout + ok.stderr);
      assert.match(ok.stdout, /3\/3 pairs ok/);
      const untrusted = await runCli(["ls", "--redis", redis.url], { env: cliEnv() });
      assert.equal(untrusted.code, 1);
      assert.match(untrusted.stderr, /TLS to Redis .* failed/);
      assert.match(untrusted.stderr, /NODE_EXTRA_CA_CERTS/);
    });
  });
});
