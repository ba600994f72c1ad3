/** Configuration (docs/configuration.md): lookup, precedence, path resolution, and errors that name the key. */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadConfig } from "../src/config/load-config.js";
import { type ConfigError } from "../src/errors.js";
import { configError } from "./helpers/config-error.js";
import { ECHO_SERVICE, PYTHON_ECHO } from "./helpers/cluster.js";

const env = { PATH: process.env.PATH };

function folderWith(config: unknown, raw?: string): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "servman-config-"));
  const file = join(dir, "servman.json");
  writeFileSync(file, raw ?? JSON.stringify(config));
  return { dir, file };
}

describe("configuration", () => {
  it("uses defaults with no file, and the result is frozen", () => {
    const dir = mkdtempSync(join(tmpdir(), "servman-empty-"));
    const config = loadConfig({}, env, dir);
    assert.equal(config.file, null);
    assert.deepEqual(config.redis, { kind: "single", url: "redis://127.0.0.1:6379" });
    assert.equal(config.prefix, "servman");
    assert.deepEqual([config.gateway.host, config.gateway.port, config.node.capacity], ["127.0.0.1", 8080, 100]);
    assert.deepEqual(config.tasks, {});
    assert.ok(Object.isFrozen(config) && Object.isFrozen(config.gateway.limits));
    assert.throws(() => {
      (config as { prefix: string }).prefix = "x";
    }, TypeError);
  });

  it("finds conf/servman.json in the working folder and resolves paths against the file's folder", () => {
    const dir = mkdtempSync(join(tmpdir(), "servman-conf-"));
    mkdirSync(join(dir, "conf"));
    mkdirSync(join(dir, "tasks"));
    writeFileSync(join(dir, "tasks", "svc.js"), "");
    writeFileSync(join(dir, "conf", "servman.json"), JSON.stringify({ tasks: { svc: { module: "../tasks/svc.js" }, py: { command: ["python3", "./x.py", "--flag"] } } }));
    const config = loadConfig({}, env, dir);
    assert.equal(config.file, join(dir, "conf", "servman.json"));
    assert.equal(config.baseDir, join(dir, "conf"));
    assert.equal(config.tasks.svc.module, join(dir, "tasks", "svc.js"));
    assert.equal(config.tasks.svc.kind, "module");
    assert.deepEqual(config.tasks.py.command, ["python3", join(dir, "conf", "x.py"), "--flag"]);
    assert.equal(config.tasks.py.readyTimeoutMs, 15_000);
  });

  it("gives flags precedence over environment, and environment over the file", () => {
    const { file } = folderWith({ redis: "redis://file:1", prefix: "fromfile", gateway: { port: 1111, host: "127.0.0.2" }, node: { capacity: 3 } });
    const fromFile = loadConfig({ config: file }, env);
    assert.deepEqual(
      [fromFile.redis.kind === "single" && fromFile.redis.url, fromFile.prefix, fromFile.gateway.port, fromFile.gateway.host, fromFile.node.capacity],
      ["redis://file:1", "fromfile", 1111, "127.0.0.2", 3],
    );
    const envVars = {
      ...env,
      SERVMAN_CONFIG: file,
      SERVMAN_REDIS_URL: "redis://env:2",
      SERVMAN_PORT: "2222",
      SERVMAN_PREFIX: "fromenv",
      SERVMAN_CAPACITY: "4",
      SERVMAN_HOST: "127.0.0.3",
      SERVMAN_NODE_ID: "envnode",
    };
    const fromEnv = loadConfig({}, envVars);
    assert.deepEqual(
      [fromEnv.redis.kind === "single" && fromEnv.redis.url, fromEnv.prefix, fromEnv.gateway.port, fromEnv.gateway.host, fromEnv.node.capacity, fromEnv.node.id],
      ["redis://env:2", "fromenv", 2222, "127.0.0.3", 4, "envnode"],
    );
    const fromFlags = loadConfig({ redis: "redis://flag:3", port: 3333, prefix: "fromflag", capacity: 5, host: "127.0.0.4", id: "flagnode" }, envVars);
    assert.deepEqual(
      [fromFlags.redis.kind === "single" && fromFlags.redis.url, fromFlags.prefix, fromFlags.gateway.port, fromFlags.gateway.host, fromFlags.node.capacity, fromFlags.node.id],
      ["redis://flag:3", "fromflag", 3333, "127.0.0.4", 5, "flagnode"],
    );
  });

  it("refuses a named file that does not exist", () => {
    configError(() => loadConfig({ config: "/nonexistent/servman.json" }, env), "", /does not exist/);
    configError(() => loadConfig({}, { ...env, SERVMAN_CONFIG: "/nonexistent/x.json" }), "", /does not exist/);
  });

  it("refuses bad JSON, naming the file", () => {
    const { file } = folderWith(null, "{ nope");
    assert.throws(
      () => loadConfig({ config: file }, env),
      (err: ConfigError) => err.message.includes(file) && /not valid JSON/.test(err.message),
    );
  });

  it("refuses unknown keys and wrong types, naming the key path", () => {
    configError(() => loadConfig({ config: folderWith({ gatway: {} }).file }, env), "gatway", /unexpected property/);
    configError(() => loadConfig({ config: folderWith({ gateway: { port: "80" } }).file }, env), "gateway.port", /integer|number/);
    configError(() => loadConfig({ config: folderWith({ gateway: { limits: { maxFrameSize: 1 } } }).file }, env), "gateway.limits.maxFrameSize", /unexpected property/);
    configError(
      () => loadConfig({ config: folderWith({ tasks: { t: { module: ECHO_SERVICE, restart: "sometimes" } } }).file }, env),
      "tasks.t.restart",
      /expected one of "never", "on-failure", "always"/,
    );
    configError(() => loadConfig({ config: folderWith({ tasks: { t: { module: ECHO_SERVICE, colour: "red" } } }).file }, env), "tasks.t.colour", /unexpected property/);
    configError(() => loadConfig({ config: folderWith({ tasks: { "bad:name": { module: ECHO_SERVICE } } }).file }, env), "tasks.bad:name", /unexpected property/);
    configError(() => loadConfig({ config: folderWith({ redis: "http://x" }).file }, env), "redis", /redis\+cluster:\/\//);
  });

  it("takes Redis as one server, a cluster or a Sentinel master, from the file, the environment and flags", () => {
    const cluster = loadConfig({ config: folderWith({ redis: { cluster: ["redis://127.0.0.1:7000", "rediss://u:p@10.0.0.2:7001"] } }).file }, env);
    assert.deepEqual(cluster.redis, { kind: "cluster", nodes: ["redis://127.0.0.1:7000", "rediss://u:p@10.0.0.2:7001"] });
    const sentinel = loadConfig({ config: folderWith({ redis: { sentinels: ["10.0.0.1:26379", "[::1]:26380"], name: "mymaster", password: "pw", sentinelPassword: "spw", tls: true } }).file }, env);
    assert.deepEqual(sentinel.redis, {
      kind: "sentinel",
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "::1", port: 26380 },
      ],
      name: "mymaster",
      password: "pw",
      sentinelPassword: "spw",
      tls: true,
    });
    const fromEnv = loadConfig({}, { ...env, SERVMAN_REDIS_URL: "redis+sentinel://al%40ice:p@ss@h1:26379,h2:26380/main" }, mkdtempSync(join(tmpdir(), "e-")));
    assert.deepEqual(fromEnv.redis, {
      kind: "sentinel",
      sentinels: [
        { host: "h1", port: 26379 },
        { host: "h2", port: 26380 },
      ],
      name: "main",
      username: "al@ice",
      password: "p@ss",
      tls: false,
    });
    const fromFlag = loadConfig({ redis: "rediss+cluster://user:pw@h1:7000,h2:7001" }, env, mkdtempSync(join(tmpdir(), "e-")));
    assert.deepEqual(fromFlag.redis, { kind: "cluster", nodes: ["rediss://user:pw@h1:7000", "rediss://user:pw@h2:7001"] });
  });

  it("refuses a malformed Redis form, naming the key or flag", () => {
    const cwd = mkdtempSync(join(tmpdir(), "e-"));
    configError(() => loadConfig({ redis: "redis+sentinel://h1:26379" }, env, cwd), "--redis", /master's name/);
    // The message shows the URL without its password, "@" in the password included.
    configError(() => loadConfig({ redis: "http://u:p@ss@host" }, env, cwd), "--redis", /"http:\/\/u:\*\*\*@host"/);
    configError(() => loadConfig({ redis: "redis+cluster://h1" }, env, cwd), "--redis", /HOST:PORT/);
    configError(() => loadConfig({ redis: "redis+cluster://" }, env, cwd), "--redis", /at least one/);
    configError(() => loadConfig({}, { ...env, SERVMAN_REDIS_URL: "redis+sentinel://h1:99999/m" }, cwd), "$SERVMAN_REDIS_URL", /HOST:PORT/);
    configError(() => loadConfig({ config: folderWith({ redis: { sentinels: ["nohost"], name: "m" } }).file }, env), "redis.sentinels.0", /HOST:PORT/);
    configError(() => loadConfig({ config: folderWith({ redis: { cluster: ["http://x:1"] } }).file }, env), "redis.cluster.0", /redis:\/\//);
    configError(() => loadConfig({ config: folderWith({ redis: { sentinels: ["h:1"] } }).file }, env), "redis.name", /required/);
  });

  it("refuses a task whose module or program does not exist, or that is both or neither", () => {
    configError(() => loadConfig({ config: folderWith({ tasks: { t: { module: "./missing.js" } } }).file }, env), "tasks.t.module", /does not exist/);
    configError(() => loadConfig({ config: folderWith({ tasks: { t: { command: ["no-such-program-xyz"] } } }).file }, env), "tasks.t.command.0", /on PATH/);
    configError(() => loadConfig({ config: folderWith({ tasks: { t: { command: ["./missing.sh"] } } }).file }, env), "tasks.t.command.0", /executable/);
    configError(() => loadConfig({ config: folderWith({ tasks: { t: { module: ECHO_SERVICE, command: ["python3", PYTHON_ECHO] } } }).file }, env), "tasks.t", /exactly one/);
    configError(() => loadConfig({ config: folderWith({ tasks: { t: {} } }).file }, env), "tasks.t", /exactly one/);
    configError(() => loadConfig({ config: folderWith({ tasks: { t: { module: ECHO_SERVICE, livenessTimeoutMs: 1000 } } }).file }, env), "tasks.t.livenessTimeoutMs", /at least 5000/);
    configError(() => loadConfig({ config: folderWith({ tasks: { t: { module: ECHO_SERVICE, warm: 3, warmMax: 2 } } }).file }, env), "tasks.t.warmMax", /at least warm \(3\)/);
  });

  it("defaults warmMax to warm (no growth), and takes a larger one", () => {
    const load = (entry: object) => loadConfig({ config: folderWith({ tasks: { t: { module: ECHO_SERVICE, ...entry } } }).file }, env).tasks.t;
    assert.deepEqual([load({}).warm, load({}).warmMax], [0, 0]);
    assert.deepEqual([load({ warm: 2 }).warm, load({ warm: 2 }).warmMax], [2, 2]);
    assert.deepEqual([load({ warm: 2, warmMax: 6 }).warm, load({ warm: 2, warmMax: 6 }).warmMax], [2, 6]);
  });

  it("refuses bad environment values, naming the variable", () => {
    configError(() => loadConfig({}, { ...env, SERVMAN_PORT: "eighty" }, mkdtempSync(join(tmpdir(), "e-"))), "$SERVMAN_PORT", /integer/);
    configError(() => loadConfig({}, { ...env, SERVMAN_REDIS_URL: "localhost" }, mkdtempSync(join(tmpdir(), "e-"))), "$SERVMAN_REDIS_URL", /redis:\/\//);
    configError(() => loadConfig({}, { ...env, SERVMAN_AUTH_SECRET: "short" }, mkdtempSync(join(tmpdir(), "e-"))), "$SERVMAN_AUTH_SECRET", /16 characters/);
    const shortToken = () => loadConfig({}, { ...env, SERVMAN_ADMIN_TOKENS: "a".repeat(20) + ",tiny" }, mkdtempSync(join(tmpdir(), "e-")));
    configError(shortToken, "$SERVMAN_ADMIN_TOKENS", /16 characters/);
    assert.throws(shortToken, (err: Error) => !err.message.includes("tiny"), "a token is never in the message");
  });

  it("takes auth.secret and auth.adminTokens from the environment over the file", () => {
    const { file } = folderWith({ auth: { secret: "file-secret-0123456789", adminTokens: ["file-token-0123456789"] } });
    assert.deepEqual(loadConfig({ config: file }, env).auth, { secret: "file-secret-0123456789", adminTokens: ["file-token-0123456789"] });
    const fromEnv = loadConfig({ config: file }, { ...env, SERVMAN_AUTH_SECRET: "env-secret-0123456789", SERVMAN_ADMIN_TOKENS: "env-token-a-0123456789, env-token-b-0123456789" });
    assert.deepEqual(fromEnv.auth, { secret: "env-secret-0123456789", adminTokens: ["env-token-a-0123456789", "env-token-b-0123456789"] });
  });
});
