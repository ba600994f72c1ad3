/**
 * Dockerfile and docker-compose.yml are read, not run (no Docker engine in CI): this pins what a
 * `docker compose up` depends on, and checks every service's command against the real CLI parser
 * so a renamed or removed flag breaks here rather than in a container restart loop.
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { fileURLToPath } from "node:url";
import { overridesOf, parseCommand } from "../cli/cli-options.js";
import { GatewayAuth } from "../gateway/gateway-auth.js";
import { assertServable } from "../gateway/servable.js";
import { loadConfig } from "../src/config/load-config.js";
import { parseRedisString } from "../src/config/redis-target.js";

// Compiled to dist/test/, so the repo root is two levels up.
const root = new URL("../../", import.meta.url);
const read = (name: string) => readFileSync(new URL(name, root), "utf8");

interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition?: string }>;
  ports?: string[];
  restart?: string;
  stop_grace_period?: string;
  healthcheck?: { test?: string[] };
  profiles?: string[];
  entrypoint?: string[];
}
// merge: the servman services share their settings through a `<<: *servman` anchor.
const compose = parse(read("docker-compose.yml"), { merge: true }) as { services: Record<string, Service> };
const services = compose.services;
const gateways = ["gateway-1", "gateway-2"];
const nodes = ["node-1", "node-2"];
const servman = [...gateways, ...nodes];

const dockerfile = read("Dockerfile");
/** The arguments of every instruction named `name`, line continuations joined. */
function instructions(name: string): string[] {
  const lines = dockerfile.replace(/\\\n/g, " ").split("\n");
  return lines.filter((line) => new RegExp(`^${name}\\s`, "i").test(line)).map((line) => line.slice(name.length).trim());
}

// The optional `cluster` profile: six cluster nodes, a one-shot `--cluster create`, a gateway and a node on them.
const clusterNodes = [1, 2, 3, 4, 5, 6].map((i) => `redis-cluster-${i}`);
const clusterServman = ["gateway-cluster", "node-cluster"];

test("compose defines redis, two gateways and two nodes (outside any profile)", () => {
  const plain = Object.keys(services).filter((name) => services[name].profiles === undefined);
  assert.deepEqual(plain.sort(), ["gateway-1", "gateway-2", "node-1", "node-2", "redis"]);
  assert.match(services.redis.image!, /^redis:7/);
  assert.deepEqual(services.redis.healthcheck?.test, ["CMD", "redis-cli", "ping"]);
});

test("every servman command is valid for the CLI", () => {
  for (const name of servman) {
    const command = services[name].command!;
    assert.equal(parseCommand(command).command, name.startsWith("gateway") ? "gateway" : "node", name);
  }
});

test("gateways bind all interfaces and publish distinct host ports to 8080", () => {
  const hostPorts = gateways.map((name) => {
    const { values } = parseCommand(services[name].command!);
    assert.equal(values.host, "0.0.0.0", name);
    // With auth configured: --insecure would leave the WebSocket open and the admin API off.
    assert.equal(values.insecure, undefined, name);
    assert.equal(services[name].ports?.length, 1, name);
    const [host, container] = services[name].ports[0].split(":");
    assert.equal(container, "8080", name);
    assert.match(services[name].healthcheck?.test?.join(" ") ?? "", /127\.0\.0\.1:8080\/healthz/, name);
    return host;
  });
  assert.equal(new Set(hostPorts).size, gateways.length);
});

test("gateways take a ticket secret and an admin token from the environment, with no default", () => {
  for (const name of gateways) {
    const env = services[name].environment ?? {};
    // Passed on from the host's environment, empty when unset: no secret is in the file.
    for (const key of ["SERVMAN_AUTH_SECRET", "SERVMAN_ADMIN_TOKENS"]) assert.equal(env[key], `\${${key}:-}`, `${name} ${key}`);
    const load = (vars: Record<string, string>) => loadConfig(overridesOf(parseCommand(services[name].command!).values), { PATH: process.env.PATH, ...vars }, fileURLToPath(root));
    // Set: auth is on, so 0.0.0.0 is allowed and the admin API is served.
    const config = load({ SERVMAN_AUTH_SECRET: "s".repeat(32), SERVMAN_ADMIN_TOKENS: "t".repeat(32) });
    assert.doesNotThrow(() => assertServable(config), name);
    assert.equal(new GatewayAuth(config.auth, config.gateway.host).adminOff, null, name);
    // Unset (compose passes empty strings): the gateway refuses to start rather than run open.
    const unset = load({ SERVMAN_AUTH_SECRET: "", SERVMAN_ADMIN_TOKENS: "" });
    assert.throws(() => assertServable(unset), /SERVMAN_AUTH_SECRET/, name);
  }
  assert.ok(read(".dockerignore").split("\n").includes(".env"), "a .env with the secrets stays out of the image");
});

test("nodes have distinct ids", () => {
  const ids = nodes.map((name) => parseCommand(services[name].command!).values.id);
  for (const id of ids) assert.equal(typeof id, "string");
  assert.equal(new Set(ids).size, nodes.length);
});

test("servman services reach the redis service and wait for it", () => {
  for (const name of servman) {
    const service = services[name];
    assert.equal(service.environment?.SERVMAN_REDIS_URL, "redis://redis:6379", name);
    assert.equal(service.depends_on?.redis?.condition, "service_healthy", name);
    assert.equal(service.restart, "unless-stopped", name);
    // Drain takes up to shutdownDeadlineMs (5 s) plus 5 s grace; Docker's default 10 s cuts it off.
    assert.ok(Number.parseInt(service.stop_grace_period ?? "0", 10) > 10, name);
  }
});

test("the Dockerfile builds a Node >= 20 image with python3 that runs bin/servman.js", () => {
  const from = instructions("FROM").at(-1) ?? "";
  assert.ok(Number(/^node:(\d+)/.exec(from)?.[1]) >= 20, from);
  assert.ok(instructions("RUN").some((run) => /apt-get install .*\bpython3\b/.test(run)));
  assert.ok(instructions("RUN").some((run) => /\bnpm ci\b/.test(run)));
  assert.deepEqual(JSON.parse(instructions("ENTRYPOINT")[0]), ["node", "bin/servman.js"]);
  assert.deepEqual(JSON.parse(instructions("CMD")[0]), ["start"]);
  assert.deepEqual(instructions("USER"), ["node"]);
});

test("the image's working dir holds conf/servman.json, where the default config lookup looks", () => {
  const workdir = instructions("WORKDIR").at(-1);
  assert.ok(workdir?.startsWith("/"), "WORKDIR must be absolute");
  // `COPY . .` (or an explicit `COPY conf ...`) into the working dir brings conf/ along.
  assert.ok(instructions("COPY").some((copy) => /^(\.|conf\/?) (\.|\.\/|\.\/conf\/?|conf\/?)$/.test(copy)));
  const ignored = read(".dockerignore")
    .split("\n")
    .map((line) => line.trim());
  assert.ok(!ignored.some((line) => /^\/?conf\b/.test(line)), ".dockerignore must not exclude conf/");
  // Host builds are for the host's platform; the image installs and compiles its own.
  assert.ok(ignored.includes("node_modules") && ignored.includes("dist"));
});

test("the cluster profile: six cluster-enabled nodes, joined by a one-shot create, with servman on them", () => {
  const inProfile = Object.keys(services).filter((name) => services[name].profiles !== undefined);
  assert.deepEqual(inProfile.sort(), [...clusterNodes, "redis-cluster-create", ...clusterServman].sort());
  for (const name of inProfile) assert.deepEqual(services[name].profiles, ["cluster"], name);
  for (const name of clusterNodes) {
    const command = services[name].command!;
    assert.match(services[name].image!, /^redis:7/, name);
    assert.equal(command[0], "redis-server", name);
    assert.equal(command[command.indexOf("--cluster-enabled") + 1], "yes", name);
    assert.deepEqual(services[name].healthcheck?.test, ["CMD", "redis-cli", "ping"], name);
  }
  const create = services["redis-cluster-create"];
  assert.deepEqual(Object.keys(create.depends_on ?? {}).sort(), [...clusterNodes].sort());
  for (const name of clusterNodes) assert.equal(create.depends_on?.[name]?.condition, "service_healthy", name);
  assert.equal(create.restart, "no");
  const script = [...(create.entrypoint ?? []), ...(create.command ?? [])].join(" ");
  // Every node by name (resolved to an address, which --cluster create needs), a replica per master.
  assert.match(script, /redis-cli --cluster create/);
  assert.match(script, /for i in 1 2 3 4 5 6;.*redis-cluster-\$\$i/);
  assert.match(script, /--cluster-replicas 1 --cluster-yes/);
  // A second `up` finds the cluster made and leaves it alone.
  assert.match(script, /cluster_state:ok \|\|/);
});

test("the cluster profile's gateway and node are valid, reach the cluster and wait for its creation", () => {
  for (const name of clusterServman) {
    const service = services[name];
    assert.equal(parseCommand(service.command!).command, name.startsWith("gateway") ? "gateway" : "node", name);
    const target = parseRedisString(service.environment?.SERVMAN_REDIS_URL ?? "", "SERVMAN_REDIS_URL");
    assert.equal(target.kind, "cluster", name);
    for (const url of target.kind === "cluster" ? target.nodes : []) assert.ok(clusterNodes.includes(new URL(url).hostname), `${name}: ${url}`);
    assert.equal(service.depends_on?.["redis-cluster-create"]?.condition, "service_completed_successfully", name);
    assert.equal(service.restart, "unless-stopped", name);
  }
  const gateway = services["gateway-cluster"];
  const { values } = parseCommand(gateway.command!);
  assert.equal(values.host, "0.0.0.0");
  for (const key of ["SERVMAN_AUTH_SECRET", "SERVMAN_ADMIN_TOKENS"]) assert.equal(gateway.environment?.[key], `\${${key}:-}`, key);
  const hostPorts = [...gateways, "gateway-cluster"].map((name) => services[name].ports?.[0]?.split(":")[0]);
  assert.equal(new Set(hostPorts).size, hostPorts.length, "a host port of its own");
  const ids = [...nodes, "node-cluster"].map((name) => parseCommand(services[name].command!).values.id);
  assert.equal(new Set(ids).size, ids.length, "node ids are distinct across profiles");
});
