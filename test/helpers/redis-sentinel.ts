/**
 * A real Redis Sentinel setup for tests: a master, one replica (`--replicaof`) and 3 sentinels
 * (quorum 2) on free ports of 127.0.0.1, in one temporary folder. Optionally with a password on
 * the data servers (requirepass + masterauth, and `sentinel auth-pass` for the sentinels), as
 * users deploy it. Servers are ended by PID in `stop()`, and SIGKILLed if the test process exits
 * or is signalled first (test/helpers/owned-processes.ts). Never 127.0.0.1:6379.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { RedisOptions } from "ioredis";
import { killNow, ownFolder, removeFolder } from "./owned-processes.js";
import { ask, assertRunning, freePortPair, logTail, parseInfo, pollFor, retryingStart, ServerExited, spawnRedisServer, tryAsk } from "./redis-process.js";

export interface TestRedisSentinel {
  /** The master group's name (`sentinel monitor NAME ...`). */
  name: string;
  /** The sentinels' addresses, as ioredis takes them. */
  sentinels: Array<{ host: string; port: number }>;
  /** The data servers' ports (the first master, then the replica). */
  dataPorts: number[];
  /** The data servers' password, if started with one. */
  password: string | undefined;
  /** ioredis options for a client of the current master through the sentinels. */
  clientOptions(extra?: RedisOptions): RedisOptions;
  /** The current master's port, as a live sentinel says (`SENTINEL get-master-addr-by-name`). */
  master(): Promise<number>;
  /** SIGKILLs the server (data or sentinel) on `port`; resolves once it is gone. */
  kill(port: number): Promise<void>;
  /** Resolves with the new master's port once every live sentinel names it and it says role:master. */
  waitForFailover(oldPort: number, ms?: number): Promise<number>;
  /**
   * A manual failover (`SENTINEL FAILOVER`; the old master stays up): resolves with the new
   * master's port once every live sentinel names it and it says role:master. The old master is
   * still a master until Sentinel next looks at it: see `waitForReplica`.
   */
  failover(ms?: number): Promise<number>;
  /** Resolves once the data server on `port` is a linked replica of the current master. */
  waitForReplica(port: number, ms?: number): Promise<void>;
  /** Ends every server by PID and removes the temporary folder. */
  stop(): Promise<void>;
}

export interface RedisSentinelOptions {
  /** Password for the master and replica (default none). */
  password?: string;
  /** Master group name (default `servman`). */
  name?: string;
  /** `down-after-milliseconds` (default 1000). */
  downAfterMs?: number;
  /** `failover-timeout` (default 4000). */
  failoverTimeoutMs?: number;
  /** How long to wait for the setup to be ready (default 30 s). */
  readyMs?: number;
}

/**
 * Starts the master, replica and sentinels (new ports if a server could not start); resolves once
 * every sentinel knows all of them.
 */
export function startRedisSentinel(options: RedisSentinelOptions = {}): Promise<TestRedisSentinel> {
  return retryingStart(() => startOnce(options));
}

async function startOnce(options: RedisSentinelOptions): Promise<TestRedisSentinel> {
  const name = options.name ?? "servman";
  const password = options.password;
  const readyMs = options.readyMs ?? 30_000;
  const root = mkdtempSync(join(tmpdir(), "servman-sentinel-"));
  ownFolder(root);
  const children = new Map<number, ChildProcess>();
  const taken = new Set<number>();
  const nextPort = async () => {
    const port = await freePortPair(false, taken);
    taken.add(port);
    return port;
  };
  const start = (port: number, args: string[]) => children.set(port, spawnRedisServer(args));
  const alive = (port: number) => {
    const c = children.get(port);
    return !!c && c.exitCode === null && c.signalCode === null;
  };
  const auth = password ? ["--requirepass", password, "--masterauth", password] : [];
  const dataArgs = (port: number) => [
    ...["--port", String(port), "--bind", "127.0.0.1", "--dir", root, "--save", "", "--appendonly", "no"],
    ...["--logfile", join(root, `redis-${port}.log`), ...auth],
  ];
  const stop = async () => {
    await Promise.all([...children.values()].map(killNow));
    removeFolder(root);
  };

  const masterPort = await nextPort();
  const replicaPort = await nextPort();
  const sentinelPorts = [await nextPort(), await nextPort(), await nextPort()];
  try {
    start(masterPort, dataArgs(masterPort));
    start(replicaPort, [...dataArgs(replicaPort), "--replicaof", "127.0.0.1", String(masterPort)]);
    // Sentinels learn replicas from the master's INFO (every 10 s), so start them once the replica
    // is linked: they then see it at once.
    await pollFor(
      async () => {
        assertRunning(children.values());
        const repl = await tryAsk(replicaPort, password, "INFO", "replication");
        return typeof repl === "string" && parseInfo(repl).master_link_status === "up" ? true : undefined;
      },
      "the replica to link to the master",
      readyMs,
    );
    for (const port of sentinelPorts) {
      // Each sentinel rewrites its own config file, so each has one.
      const conf = join(root, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${root}`,
          `logfile ${join(root, `sentinel-${port}.log`)}`,
          `sentinel monitor ${name} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 4000}`,
          `sentinel parallel-syncs ${name} 1`,
          ...(password ? [`sentinel auth-pass ${name} ${password}`] : []),
          "",
        ].join("\n"),
      );
      start(port, [conf, "--sentinel"]);
    }
    // A failover needs a majority of sentinels to agree, so each must know the 2 others (they
    // find each other through hello messages on the master, every 2 s) and the replica.
    await pollFor(
      async () => {
        assertRunning(children.values());
        for (const port of sentinelPorts) {
          const master = await tryAsk(port, undefined, "SENTINEL", "MASTER", name);
          if (!Array.isArray(master)) return undefined;
          const fields = new Map<string, string>();
          for (let i = 0; i + 1 < master.length; i += 2) fields.set(String(master[i]), String(master[i + 1]));
          if (fields.get("num-slaves") !== "1" || fields.get("num-other-sentinels") !== "2") return undefined;
          if (
            !fields
              .get("flags")
              ?.split(",")
              .every((f) => f === "master")
          )
            return undefined;
        }
        return true;
      },
      "the sentinels to know the master, the replica and each other",
      readyMs,
    );
  } catch (err) {
    const logs = [...children.keys()].map((p) => `--- ${p}\n${logTail(join(root, sentinelPorts.includes(p) ? `sentinel-${p}.log` : `redis-${p}.log`))}`).join("\n");
    await stop();
    if (err instanceof ServerExited) throw err;
    throw new Error(`${(err as Error).message}\n${logs}`);
  }

  /** The master port each live sentinel names. */
  const named = async () => {
    const ports: number[] = [];
    for (const port of sentinelPorts.filter(alive)) {
      const addr = await tryAsk(port, undefined, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", name);
      if (Array.isArray(addr)) ports.push(Number(addr[1]));
    }
    return ports;
  };

  return {
    name,
    sentinels: sentinelPorts.map((port) => ({ host: "127.0.0.1", port })),
    dataPorts: [masterPort, replicaPort],
    password,
    clientOptions(extra = {}) {
      return { sentinels: sentinelPorts.map((port) => ({ host: "127.0.0.1", port })), name, ...(password ? { password } : {}), ...extra };
    },
    async master() {
      const ports = await named();
      if (ports.length === 0) throw new Error("no sentinel answers");
      return ports[0];
    },
    async kill(port) {
      const child = children.get(port);
      if (!child) throw new Error(`port ${port} is not a server of this setup`);
      await killNow(child);
    },
    waitForFailover,
    async failover(ms = 30_000) {
      const oldPort = (await named())[0];
      const live = sentinelPorts.find(alive);
      if (oldPort === undefined || live === undefined) throw new Error("no sentinel answers");
      await ask(live, undefined, "SENTINEL", "FAILOVER", name);
      return waitForFailover(oldPort, ms);
    },
    async waitForReplica(port, ms = 30_000) {
      // Sentinel reconfigures a demoted or restarted master when it next looks at it (INFO, every
      // 10 s), then the replica syncs: this can take over 10 s.
      await pollFor(
        async () => {
          const current = (await named())[0];
          const repl = await tryAsk(port, password, "INFO", "replication");
          if (current === undefined || typeof repl !== "string") return undefined;
          const info = parseInfo(repl);
          return info.role === "slave" && info.master_port === String(current) && info.master_link_status === "up" ? true : undefined;
        },
        `${port} to be a linked replica`,
        ms,
      );
    },
    stop,
  };

  async function waitForFailover(oldPort: number, ms = 30_000): Promise<number> {
    return pollFor(
      async () => {
        const ports = await named();
        const first = ports[0];
        if (first === undefined || first === oldPort || ports.some((p) => p !== first)) return undefined;
        const repl = await tryAsk(first, password, "INFO", "replication");
        return typeof repl === "string" && parseInfo(repl).role === "master" ? first : undefined;
      },
      `a failover of ${oldPort}`,
      ms,
    );
  }
}
