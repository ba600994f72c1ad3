/**
 * Real clusters for integration tests: a configuration file written to a temporary folder, and
 * real gateways and nodes (in this process) whose instances are real child processes.
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { pino, type Logger } from "pino";
import { WebSocket } from "ws";
import { Gateway } from "../../gateway/gateway.js";
import { ServmanNode } from "../../nodes/servman-node.js";
import { ServmanClient } from "../../src/client/servman-client.js";
import { loadConfig } from "../../src/config/load-config.js";
import type { ServmanConfig } from "../../src/config/options.js";
import type { RedisFileValue } from "../../src/config/redis-target.js";

/** The Redis a test configuration points at: a server's URL, or a `redis` value of any topology. */
export interface RedisUnderTest {
  url: string;
  /** The `redis` value to write (default: `url`), e.g. `{cluster: [startup URLs]}`. */
  config?: RedisFileValue;
}

/** The repository root (tests run from dist/test/). */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
export const ECHO_SERVICE = fileURLToPath(new URL("../fixtures/echo-service.js", import.meta.url));
export const HEARTBEAT_SERVICE = join(ROOT, "dist/examples/heartbeat/service.js");
export const PYTHON_ECHO = join(ROOT, "examples/python-echo/echo.py");
export const CLI = join(ROOT, "bin/servman.js");

/** Tasks every test cluster offers. */
export function testTasks(): Record<string, unknown> {
  return {
    echo: { module: ECHO_SERVICE, env: { ECHO_EXTRA: "from-config" } },
    "slow-echo": { module: ECHO_SERVICE, readyTimeoutMs: 800 },
    "idle-echo": { module: ECHO_SERVICE, idleTimeoutMs: 300 },
    "empty-echo": { module: ECHO_SERVICE, emptyTimeoutMs: 300 },
    "kept-echo": { module: ECHO_SERVICE, emptyTimeoutMs: 0 },
    "crashy-echo": { module: ECHO_SERVICE, restart: "on-failure", maxRestarts: 2 },
    "always-echo": { module: ECHO_SERVICE, restart: "always", maxRestarts: 5 },
    "fat-echo": { module: ECHO_SERVICE, maxMemoryMb: 80 },
    "hung-echo": { module: ECHO_SERVICE, restart: "on-failure", maxRestarts: 2, livenessTimeoutMs: 5000 },
    "short-echo": { module: ECHO_SERVICE, maxLifetimeMs: 500 },
    "python-echo": { command: ["python3", PYTHON_ECHO] },
    heartbeat: { module: HEARTBEAT_SERVICE },
  };
}

/** Writes a configuration file and returns its path. */
export function writeConfig(file: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), "servman-test-"));
  const path = join(dir, "servman.json");
  writeFileSync(path, JSON.stringify(file, null, 2));
  return path;
}

/** A configuration for `redis` with the test tasks (and `extra` merged over the top level). */
export function testConfig(redis: RedisUnderTest, extra: Record<string, unknown> = {}): ServmanConfig {
  const path = writeConfig({
    redis: redis.config ?? redis.url,
    prefix: "t",
    gateway: { host: "127.0.0.1", port: 0 },
    node: { capacity: 20, shutdownDeadlineMs: 2000 },
    tasks: testTasks(),
    ...extra,
  });
  // Only PATH from the environment: a developer's SERVMAN_* variables must not change the tests.
  return loadConfig({ config: path }, { PATH: process.env.PATH });
}

export interface NodeSpec {
  id?: string;
  capacity?: number;
  tasks?: string[];
}

/** A frame-level client for protocol tests: raw JSON in, raw JSON out. */
export class RawClient {
  readonly frames: Record<string, any>[] = [];
  private waiters: { match: (f: Record<string, any>) => boolean; resolve: (f: Record<string, any>) => void; reject: (err: Error) => void }[] = [];
  closeCode: number | null = null;
  /** Session id from the welcome. */
  session = "";
  /** The welcome frame (session, resume token, gateway). */
  welcome: Record<string, any> = {};
  private nextId = 1;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let frame: Record<string, any>;
      try {
        frame = JSON.parse(data.toString()) as Record<string, any>;
      } catch {
        // Garbage relayed on purpose (fuzzing) must not end the test process.
        frame = { type: "unparseable", text: data.toString().slice(0, 200) };
      }
      const i = this.waiters.findIndex((w) => w.match(frame));
      if (i >= 0) this.waiters.splice(i, 1)[0].resolve(frame);
      else this.frames.push(frame);
    });
    ws.on("close", (code) => {
      this.closeCode = code;
      // Nothing more will arrive: whoever still waits hears so now, not at its timeout.
      for (const w of this.waiters.splice(0)) w.reject(new Error(`connection closed (${code})`));
    });
  }

  static async connect(url: string, headers?: Record<string, string>): Promise<RawClient> {
    const ws = new WebSocket(url, headers ? { headers } : {});
    const client = new RawClient(ws);
    client.welcome = await client.next((f) => f.type === "welcome");
    client.session = client.welcome.session as string;
    return client;
  }

  /** The next frame matching `match` (already received or still to come). */
  next(match: (f: Record<string, any>) => boolean = () => true, ms = 10_000): Promise<Record<string, any>> {
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    if (this.closeCode !== null) return Promise.reject(new Error(`connection closed (${this.closeCode})`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no matching frame within ${ms} ms; have ${JSON.stringify(this.frames)}`)), ms);
      this.waiters.push({ match, resolve: (f) => (clearTimeout(timer), resolve(f)), reject: (err) => (clearTimeout(timer), reject(err)) });
    });
  }

  sendText(text: string): void {
    this.ws.send(text);
  }

  send(frame: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Sends `frame` with a fresh id and resolves with the reply carrying that id. */
  request(frame: Record<string, unknown>, ms?: number): Promise<Record<string, any>> {
    const id = `r${this.nextId++}`;
    this.send({ ...frame, id });
    return this.next((f) => f.id === id, ms);
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once("close", () => resolve());
      this.ws.close();
    });
  }
}

export class TestCluster {
  readonly gateways: Gateway[] = [];
  readonly nodes: ServmanNode[] = [];
  private readonly clients: (ServmanClient | RawClient)[] = [];

  constructor(
    readonly config: ServmanConfig,
    private readonly logger?: Logger,
  ) {}

  async addNode(spec: NodeSpec = {}): Promise<ServmanNode> {
    const config: ServmanConfig = {
      ...this.config,
      node: { ...this.config.node, ...(spec.id ? { id: spec.id } : {}), ...(spec.capacity !== undefined ? { capacity: spec.capacity } : {}) },
    };
    const node = new ServmanNode({ config, ...(spec.tasks ? { tasks: spec.tasks } : {}), ...(this.logger ? { logger: this.logger } : {}) });
    await node.start();
    this.nodes.push(node);
    return node;
  }

  async addGateway(): Promise<Gateway> {
    const gateway = new Gateway({ config: this.config, processMetrics: false, ...(this.logger ? { logger: this.logger } : {}) });
    await gateway.listen();
    this.gateways.push(gateway);
    return gateway;
  }

  /** A connected SDK client on gateway `i`. */
  async client(i = 0): Promise<ServmanClient> {
    const client = new ServmanClient(this.gateways[i].url);
    await client.connect();
    this.clients.push(client);
    return client;
  }

  /** A connected raw client on gateway `i`, presenting `ticket` if given. */
  async raw(i = 0, ticket?: string): Promise<RawClient> {
    const url = this.gateways[i].url + (ticket === undefined ? "" : `?ticket=${encodeURIComponent(ticket)}`);
    const client = await RawClient.connect(url);
    this.clients.push(client);
    return client;
  }

  /** Closes clients, gateways, then nodes (killing their instances). */
  async close(): Promise<void> {
    await Promise.allSettled(this.clients.map((c) => c.close()));
    await Promise.allSettled(this.gateways.map((g) => g.close()));
    await Promise.allSettled(this.nodes.map((n) => n.close()));
  }
}

export interface StartClusterOptions {
  gateways?: number;
  nodes?: NodeSpec[];
  /** Top-level configuration keys merged over the test defaults. */
  extra?: Record<string, unknown>;
  /** Root logger for gateways and nodes. Default: silent, or with `TEST_LOG=FILE`, info and above to FILE. */
  logger?: Logger;
}

/** The logger a test's roles get when it names none: `TEST_LOG=FILE` writes theirs to FILE (for debugging a failing run). */
export function testLogger(): Logger | undefined {
  const file = process.env.TEST_LOG;
  return file ? pino({ level: "info" }, pino.destination({ dest: file, append: true, sync: false })) : undefined;
}

/** A cluster of `gateways` gateways and the given nodes (default: one node offering every task). */
export async function startCluster(redis: RedisUnderTest, options: StartClusterOptions = {}): Promise<TestCluster> {
  const cluster = new TestCluster(testConfig(redis, options.extra), options.logger ?? testLogger());
  for (const spec of options.nodes ?? [{}]) await cluster.addNode(spec);
  for (let i = 0; i < (options.gateways ?? 1); i++) await cluster.addGateway();
  return cluster;
}
