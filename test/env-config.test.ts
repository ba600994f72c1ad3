/**
 * Configuration from the environment (docs/configuration.md#environment-variables): names, values, `_FILE`, precedence,
 * errors; and `servman config schema | check` (docs/cli.md#servman-config) run as child processes.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Type } from "@sinclair/typebox";
import { jwtVerify } from "jose";
import { envSegment, findKey, type SchemaNode } from "../src/config/env-names.js";
import { applyEnvironment } from "../src/config/env-overrides.js";
import { loadConfig } from "../src/config/load-config.js";
import { ConfigFileSchema } from "../src/config/schema.js";
import { cliEnv, runCli } from "./helpers/cli.js";
import { ROOT, writeConfig } from "./helpers/cluster.js";
import { configError } from "./helpers/config-error.js";

const PATH = { PATH: process.env.PATH };
const SECRET = "s3cret-0123456789abcdef";

/** A folder with a config file (and an empty module `svc.js` for tasks to name). */
function folderWith(config: unknown): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), "servman-env-"));
  writeFileSync(join(dir, "svc.js"), "");
  const file = join(dir, "servman.json");
  writeFileSync(file, JSON.stringify(config));
  return { dir, file };
}

/** Loads `config` (a file) with `vars` as the whole environment; returns the configuration and the warnings. */
function load(config: unknown, vars: Record<string, string>, flags = {}) {
  const { dir, file } = folderWith(config);
  const warnings: string[] = [];
  const result = loadConfig({ config: file, ...flags }, { ...PATH, ...vars }, dir, (w) => warnings.push(w));
  return { config: result, warnings, dir, file };
}

describe("configuration from the environment", () => {
  it("sets the keys of the contract's examples", () => {
    const { config } = load(
      { tasks: { echo: { module: "./svc.js" } } },
      { SERVMAN_GATEWAY__LIMITS__BURST: "500", SERVMAN_GATEWAY__LIMITS__MESSAGES_PER_SECOND: "200", SERVMAN_AUTH__SECRET: SECRET, SERVMAN_TASKS__ECHO__MAX_RESTARTS: "7" },
    );
    assert.deepEqual([config.gateway.limits.burst, config.gateway.limits.messagesPerSecond, config.auth.secret, config.tasks.echo.maxRestarts], [500, 200, SECRET, 7]);
    // The defaults of the keys no variable names stay.
    assert.equal(config.gateway.limits.maxFrameBytes, 1_048_576);
  });

  it("derives the names from the schema, so a key added to it needs no other change", () => {
    // SERVMAN_TASKS__ECHO__MAX_CLIENTS of the contract, on a schema that has the key.
    const schema = Type.Object({ tasks: Type.Record(Type.String(), Type.Object({ module: Type.String(), maxClients: Type.Optional(Type.Integer()) })) });
    const layer = applyEnvironment({ tasks: { echo: { module: "x.js" } } }, { SERVMAN_TASKS__ECHO__MAX_CLIENTS: "4" }, "/", schema);
    assert.deepEqual(layer.data, { tasks: { echo: { module: "x.js", maxClients: 4 } } });
    // Every key of the real schema, at every level, is reached by its name.
    const walk = (node: SchemaNode, path: string[], levels: string[]): number => {
      let keys = 0;
      for (const member of node.anyOf ?? [node]) {
        for (const [key, child] of Object.entries(member.properties ?? {})) {
          if (key.startsWith("$")) continue;
          const name = [...levels, envSegment(key)];
          assert.deepEqual(findKey(ConfigFileSchema as SchemaNode, name, { tasks: { "my-task": {} } })?.path, [...path, key], name.join("__"));
          keys += 1 + walk(child, [...path, key], name);
        }
        for (const child of Object.values(member.patternProperties ?? {})) if (path.length === 0) keys += walk(child, [...path, "my-task"], [...levels, "MY_TASK"]);
      }
      return keys;
    };
    assert.ok(walk(ConfigFileSchema, [], []) > 40);
    assert.equal(envSegment("maxFrameBytes"), "MAX_FRAME_BYTES");
  });

  it("converts values to the key's type, and a string key takes the text as it is", () => {
    const { config } = load(
      { tasks: { echo: { module: "./svc.js" } } },
      {
        SERVMAN_NODE__ID: "1234",
        SERVMAN_GATEWAY__HOST: " 127.0.0.5",
        SERVMAN_TASKS__ECHO__RELAUNCH: "true",
        SERVMAN_GATEWAY__ALLOWED_HOSTS: '["a.example","b.example"]',
        SERVMAN_TASKS__ECHO__ENV: '{"A":"1"}',
        SERVMAN_TASKS__ECHO__ENV__PYTHONUNBUFFERED: "1",
        SERVMAN_GATEWAY__FANOUT: "session",
      },
    );
    assert.deepEqual(
      [config.node.id, config.gateway.host, config.tasks.echo.relaunch, config.gateway.allowedHosts, config.tasks.echo.env, config.gateway.fanout],
      ["1234", " 127.0.0.5", true, ["a.example", "b.example"], { A: "1", PYTHONUNBUFFERED: "1" }, "session"],
    );
    // `redis` is a string or an object: a URL stays a URL (its one-string forms included), JSON becomes the object.
    assert.deepEqual(load({}, { SERVMAN_REDIS: "redis+cluster://h1:7000,h2:7001" }).config.redis, { kind: "cluster", nodes: ["redis://h1:7000", "redis://h2:7001"] });
    assert.equal(load({}, { SERVMAN_REDIS: '{"sentinels":["h1:26379"],"name":"main"}' }).config.redis.kind, "sentinel");
  });

  it("applies keys inside an object given as JSON over it", () => {
    const { config } = load({ gateway: { limits: { burst: 10, maxDepth: 8 } } }, { SERVMAN_GATEWAY__LIMITS: '{"burst":20,"messagesPerSecond":30}', SERVMAN_GATEWAY__LIMITS__BURST: "40" });
    // The variable for `limits` replaces the file's object; the one for `burst` applies after it.
    assert.deepEqual([config.gateway.limits.burst, config.gateway.limits.messagesPerSecond, config.gateway.limits.maxDepth], [40, 30, 32]);
  });

  it("refuses a value of the wrong type, naming the variable, and quotes no list (it may hold tokens)", () => {
    configError(() => load({}, { SERVMAN_GATEWAY__LIMITS__BURST: "abc" }), "$SERVMAN_GATEWAY__LIMITS__BURST", /expected an integer, got "abc"/);
    configError(() => load({}, { SERVMAN_GATEWAY__FANOUT: "everyone" }), "$SERVMAN_GATEWAY__FANOUT (gateway.fanout)", /expected one of "gateway", "session"/);
    configError(() => load({}, { SERVMAN_GATEWAY__LIMITS__BURST: "0" }), "$SERVMAN_GATEWAY__LIMITS__BURST (gateway.limits.burst)", /greater or equal to 1/);
    configError(() => load({}, { SERVMAN_GATEWAY__LIMITS__BURST: "1.5" }), "$SERVMAN_GATEWAY__LIMITS__BURST (gateway.limits.burst)", /integer/);
    configError(() => load({ tasks: { echo: { module: "./svc.js" } } }, { SERVMAN_TASKS__ECHO__RELAUNCH: "yes" }), "$SERVMAN_TASKS__ECHO__RELAUNCH", /true or false/);
    configError(() => load({}, { SERVMAN_AUTH__SECRET: "short" }), "$SERVMAN_AUTH__SECRET (auth.secret)", /16/);
    configError(() => load({}, { SERVMAN_GATEWAY: '{"limits":{"burst":"x"}}' }), "$SERVMAN_GATEWAY (gateway.limits.burst)", /integer/);
    const tokens = () => load({}, { SERVMAN_AUTH__ADMIN_TOKENS: "token-one-0123456789,token-two-0123456789" });
    configError(tokens, "$SERVMAN_AUTH__ADMIN_TOKENS", /JSON array/);
    assert.throws(tokens, (err: Error) => !err.message.includes("token-one"));
    // The file's own problems still name the file.
    const { file } = folderWith({ gateway: { port: "x" } });
    configError(() => loadConfig({ config: file }, { ...PATH, SERVMAN_GATEWAY__HOST: "127.0.0.1" }), "gateway.port", new RegExp(file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
  });

  it("reads a _FILE variable's file, without its trailing newline", () => {
    const dir = mkdtempSync(join(tmpdir(), "servman-secret-"));
    writeFileSync(join(dir, "secret"), `${SECRET}\n`);
    writeFileSync(join(dir, "two-lines"), `${SECRET}\n\n`);
    writeFileSync(join(dir, "burst"), "64\n");
    const { config } = load({}, { SERVMAN_AUTH__SECRET_FILE: join(dir, "secret"), SERVMAN_GATEWAY__LIMITS__BURST_FILE: join(dir, "burst") });
    assert.deepEqual([config.auth.secret, config.gateway.limits.burst], [SECRET, 64]);
    // Only the one newline goes; a relative path is read from the working folder.
    const relative = loadConfig({}, { ...PATH, SERVMAN_AUTH__SECRET_FILE: "two-lines" }, dir);
    assert.equal(relative.auth.secret, `${SECRET}\n`);
    configError(() => load({}, { SERVMAN_AUTH__SECRET_FILE: "/nonexistent/secret" }), "$SERVMAN_AUTH__SECRET_FILE", /cannot read \/nonexistent\/secret: ENOENT/);
    configError(() => load({}, { SERVMAN_AUTH__SECRET: SECRET, SERVMAN_AUTH__SECRET_FILE: join(dir, "secret") }), "$SERVMAN_AUTH__SECRET_FILE", /\$SERVMAN_AUTH__SECRET sets auth.secret too/);
  });

  it("matches task names case-insensitively with _ for -, and creates a task named only in the environment", () => {
    const { config } = load(
      { tasks: { "my-game": { module: "./svc.js" }, Chess: { module: "./svc.js" } } },
      { SERVMAN_TASKS__MY_GAME__WARM: "2", SERVMAN_TASKS__CHESS__ATTEMPTS: "3", SERVMAN_TASKS__NEW_ROOM__MODULE: "./svc.js", SERVMAN_TASKS__NEW_ROOM__WARM: "1" },
    );
    assert.deepEqual(Object.keys(config.tasks).sort(), ["Chess", "my-game", "new-room"]);
    assert.deepEqual([config.tasks["my-game"].warm, config.tasks.Chess.attempts, config.tasks["new-room"].warm], [2, 3, 1]);
    // A task of the environment needs what any task needs.
    configError(() => load({}, { SERVMAN_TASKS__NEW_ROOM__WARM: "1" }), "$SERVMAN_TASKS__NEW_ROOM__WARM (tasks.new-room)", /exactly one of "module"/);
    configError(() => load({}, { SERVMAN_TASKS__NEW_ROOM__MODULE: "./nowhere.js" }), "$SERVMAN_TASKS__NEW_ROOM__MODULE (tasks.new-room.module)", /does not exist/);
    // Two tasks that one name could mean.
    const both = { tasks: { "my-game": { module: "./svc.js" }, my_game: { module: "./svc.js" } } };
    configError(() => load(both, { SERVMAN_TASKS__MY_GAME__WARM: "1" }), "$SERVMAN_TASKS__MY_GAME__WARM", /"my-game" and "my_game"/);
    // A problem with the whole task, made with the file, says which variables took part.
    assert.throws(
      () => load({ tasks: { echo: { module: "./svc.js" } } }, { SERVMAN_TASKS__ECHO__COMMAND: '["true"]' }),
      /tasks\.echo: expected exactly one .* \(with \$SERVMAN_TASKS__ECHO__COMMAND from the environment\)/,
    );
  });

  it("gives flags precedence over the environment, and the environment over the file", () => {
    const file = { gateway: { port: 1111, limits: { burst: 5 } }, node: { capacity: 3 } };
    const vars = { SERVMAN_GATEWAY__PORT: "2222", SERVMAN_NODE__CAPACITY: "4" };
    assert.deepEqual([load(file, {}).config.gateway.port, load(file, {}).config.node.capacity], [1111, 3]);
    const fromEnv = load(file, vars).config;
    assert.deepEqual([fromEnv.gateway.port, fromEnv.node.capacity, fromEnv.gateway.limits.burst], [2222, 4, 5]);
    const fromFlags = load(file, vars, { port: 3333, capacity: 6 }).config;
    assert.deepEqual([fromFlags.gateway.port, fromFlags.node.capacity], [3333, 6]);
  });

  it("keeps v1's names, and refuses a v1 and a v2 name for the same key", () => {
    const { config } = load({}, { SERVMAN_PORT: "2345", SERVMAN_AUTH_SECRET: SECRET, SERVMAN_ADMIN_TOKENS: "token-one-0123456789", SERVMAN_NODE__CAPACITY: "9" });
    assert.deepEqual([config.gateway.port, config.auth.secret, config.auth.adminTokens, config.node.capacity], [2345, SECRET, ["token-one-0123456789"], 9]);
    configError(() => load({}, { SERVMAN_PORT: "1", SERVMAN_GATEWAY__PORT: "1" }), "$SERVMAN_PORT", /\$SERVMAN_GATEWAY__PORT sets gateway.port too/);
    configError(() => load({}, { SERVMAN_ADMIN_TOKENS: "token-one-0123456789", SERVMAN_AUTH: '{"adminTokens":[]}' }), "$SERVMAN_ADMIN_TOKENS", /\$SERVMAN_AUTH sets auth.adminTokens too/);
    // A JSON object without that key is no conflict.
    assert.equal(load({}, { SERVMAN_AUTH_SECRET: SECRET, SERVMAN_AUTH: '{"adminTokens":["token-one-0123456789"]}' }).config.auth.secret, SECRET);
  });

  it("warns about a SERVMAN_ name that sets nothing, and refuses one inside a config section", () => {
    const { warnings } = load({}, { SERVMAN_NODE_CAPACITY: "4", SERVMAN_MY_OWN: "x", SERVMAN_INSTANCE: "i", SERVMAN_TASK: "t", SERVMAN_LOG_LEVEL: "warn", SERVMAN_EMPTY__X: "" });
    assert.deepEqual(warnings, [
      "$SERVMAN_MY_OWN names no configuration key and is ignored",
      "$SERVMAN_NODE_CAPACITY names no configuration key and is ignored (did you mean SERVMAN_NODE__CAPACITY? levels are separated by __)",
    ]);
    configError(() => load({}, { SERVMAN_GATEWAY__LIMITS__BRUST: "5" }), "$SERVMAN_GATEWAY__LIMITS__BRUST", /gateway.limits has no BRUST \(its keys are .*BURST/);
    configError(() => load({}, { SERVMAN_REDIS__HOST: "x" }), "$SERVMAN_REDIS__HOST", /names no configuration key/);
    // A variable set to the empty string counts as unset, as v1's do.
    assert.equal(load({ gateway: { port: 1111 } }, { SERVMAN_GATEWAY__PORT: "" }).config.gateway.port, 1111);
  });

  it("accepts $schema at the top of the file", () => {
    assert.equal(load({ $schema: "./servman.schema.json", prefix: "p" }, {}).config.prefix, "p");
  });
});

describe("servman config, run as a program", () => {
  const shipped = join(ROOT, "conf/servman.schema.json");

  it("prints the config file's JSON Schema, the one shipped in conf/, reading no configuration", async () => {
    const r = await runCli(["config", "schema"], { env: cliEnv({ SERVMAN_CONFIG: join(ROOT, "no-such-folder/servman.json"), SERVMAN_GATEWAY__PORT: "x" }) });
    assert.equal(r.code, 0, r.stderr);
    const schema = JSON.parse(r.stdout) as { $schema: string; $id: string; properties: Record<string, { description?: string }> };
    assert.equal(schema.$schema, "http://json-schema.org/draft-07/schema#");
    assert.ok(schema.$id && schema.properties.$schema && schema.properties.tasks);
    assert.match(schema.properties.gateway.description ?? "", /SERVMAN_GATEWAY\b/);
    assert.ok(r.stdout === readFileSync(shipped, "utf8"), "conf/servman.schema.json is stale: regenerate it with `npm run schema`");
  });

  it("checks file and environment: exit 0 with one line, or 2 naming the key or the variable", async () => {
    const good = writeConfig({ $schema: shipped, prefix: "checked", tasks: { "my-game": { module: join(ROOT, "dist/test/fixtures/echo-service.js") } } });
    const ok = await runCli(["config", "check", "--config", good], { env: cliEnv({ SERVMAN_TASKS__MY_GAME__WARM: "1" }) });
    assert.deepEqual([ok.code, ok.stdout, ok.stderr], [0, `ok: ${good} with the environment, tasks my-game\n`, ""]);

    const badFile = writeConfig({ gateway: { limits: { burst: "many" } } });
    const file = await runCli(["config", "check", "--config", badFile]);
    assert.equal(file.code, 2);
    assert.ok(file.stderr.includes(`${badFile} at gateway.limits.burst: expected integer`), file.stderr);

    const badEnv = await runCli(["config", "check", "--config", good], { env: cliEnv({ SERVMAN_TASKS__MY_GAME__WARM: "some" }) });
    assert.equal(badEnv.code, 2);
    assert.match(badEnv.stderr, /at \$SERVMAN_TASKS__MY_GAME__WARM: expected an integer, got "some"/);

    const unreadable = await runCli(["config", "check", "--config", good], { env: cliEnv({ SERVMAN_AUTH__SECRET_FILE: "/nonexistent/secret" }) });
    assert.equal(unreadable.code, 2);
    assert.match(unreadable.stderr, /\$SERVMAN_AUTH__SECRET_FILE: cannot read \/nonexistent\/secret/);

    // An unknown name is only a warning: the environment is shared with other programs.
    const typo = await runCli(["config", "check", "--config", good], { env: cliEnv({ SERVMAN_GATEWAY_PORT: "9000" }) });
    assert.equal(typo.code, 0, typo.stderr);
    assert.match(typo.stderr, /\$SERVMAN_GATEWAY_PORT names no configuration key and is ignored \(did you mean SERVMAN_GATEWAY__PORT\?/);

    assert.equal((await runCli(["config"])).code, 2);
    assert.equal((await runCli(["config", "validate"])).code, 2);
  });

  it("gives a command the secret of a _FILE variable", async () => {
    const secret = "from-a-file-0123456789";
    const dir = mkdtempSync(join(tmpdir(), "servman-secret-"));
    const path = join(dir, "secret");
    writeFileSync(path, `${secret}\n`);
    try {
      const r = await runCli(["ticket", "alice", "--json", "--config", writeConfig({})], { env: cliEnv({ SERVMAN_AUTH__SECRET_FILE: path }) });
      assert.equal(r.code, 0, r.stderr);
      const { ticket } = JSON.parse(r.stdout) as { ticket: string };
      const { payload } = await jwtVerify(ticket, new TextEncoder().encode(secret));
      assert.equal(payload.sub, "alice");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
