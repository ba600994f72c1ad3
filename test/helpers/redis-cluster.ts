/**
 * A real local Redis Cluster for tests: 6 `redis-server --cluster-enabled yes` processes (3 masters,
 * 3 replicas) on free ports of 127.0.0.1, each in its own temporary folder, joined with
 * `redis-cli --cluster create`. Servers are ended by PID in `stop()`, and SIGKILLed if the test
 * process exits or is signalled first (test/helpers/owned-processes.ts). Never 127.0.0.1:6379.
 */
import { execFile, type ChildProcess } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Cluster, type ClusterOptions } from "ioredis";
import { killNow, ownFolder, removeFolder } from "./owned-processes.js";
import { ask, assertRunning, freePortPair, logTail, parseInfo, pollFor, retryingStart, ServerExited, spawnRedisServer, tryAsk } from "./redis-process.js";

const run = promisify(execFile);

/** One node as seen in `CLUSTER NODES`. */
export interface ClusterNode {
  port: number;
  /** Our process for that port (the current one after `restart`). */
  pid: number;
  id: string;
  role: "master" | "replica";
  /** For a replica: its master's node id. */
  masterId?: string;
  /** Inclusive slot ranges served (masters). */
  slots: Array<[number, number]>;
  /** Flagged `fail` or `fail?` by the node we asked. */
  failing: boolean;
  /** The node we asked (flag `myself`). */
  myself: boolean;
}

/** `INFO commandstats` and `INFO cpu` of one node. */
export interface NodeStats {
  port: number;
  /** Command name (lower case, e.g. `publish`, `spublish`) → calls since the node started. */
  calls: Record<string, number>;
  /** used_cpu_sys + used_cpu_user, in seconds. */
  cpuSeconds: number;
}

export interface TestRedisCluster {
  /** `redis://127.0.0.1:P` of every node, in creation order (which become masters is redis-cli's choice). */
  startupUrls: string[];
  /** Every node's port, as created. */
  ports: number[];
  masters(): Promise<ClusterNode[]>;
  replicas(): Promise<ClusterNode[]>;
  /** The master serving `keyOrSlot` (a key, hash tag included, or a slot number). */
  masterOf(keyOrSlot: string | number): Promise<ClusterNode>;
  /** The slot of `key` (asked of a live node: `CLUSTER KEYSLOT`). */
  slotOf(key: string): Promise<number>;
  /** SIGKILLs the node on `port` and resolves once the process is gone. */
  kill(port: number): Promise<void>;
  /**
   * Resolves (with the new master) once a replica serves every slot the master on `oldPort` had,
   * and every surviving node says cluster_state:ok and agrees on that.
   */
  waitForFailover(oldPort: number, ms?: number): Promise<ClusterNode>;
  /** Starts a killed node again with its own nodes.conf; resolves once it is a linked replica. */
  restart(port: number, ms?: number): Promise<void>;
  /** An ioredis Cluster with every node as a startup node (disconnected by `stop`); errors are swallowed. */
  client(options?: ClusterOptions): Cluster;
  /** Per live node: command calls and CPU; plus calls summed over the nodes. */
  commandStats(): Promise<{ nodes: NodeStats[]; totals: Record<string, number> }>;
  /** Disconnects the clients, ends every server by PID, removes the temporary folders. */
  stop(): Promise<void>;
}

export interface RedisClusterOptions {
  /** `cluster-node-timeout` in ms (default 1000): how fast a dead master is failed over. */
  nodeTimeoutMs?: number;
  /** How long to wait for the cluster to be ready (default 30 s). */
  readyMs?: number;
}

/** Parses `CLUSTER NODES`; `pids` maps port → our process. */
export function parseClusterNodes(text: string, pids: ReadonlyMap<number, number>): ClusterNode[] {
  const nodes: ClusterNode[] = [];
  for (const line of text.trim().split("\n")) {
    const [id, address, flags, master, , , , , ...slotFields] = line.trim().split(" ");
    if (!id || !address || !flags) continue;
    const port = Number(address.split("@")[0].split(":").pop());
    const flagList = flags.split(",");
    const slots: Array<[number, number]> = [];
    for (const field of slotFields) {
      if (field.startsWith("[")) continue; // a slot being migrated or imported
      const [from, to] = field.split("-").map(Number);
      slots.push([from, to ?? from]);
    }
    nodes.push({
      port,
      pid: pids.get(port) ?? 0,
      id,
      role: flagList.includes("master") ? "master" : "replica",
      ...(master && master !== "-" ? { masterId: master } : {}),
      slots,
      failing: flagList.includes("fail") || flagList.includes("fail?"),
      myself: flagList.includes("myself"),
    });
  }
  return nodes;
}

function serves(node: ClusterNode, slot: number): boolean {
  return node.slots.some(([from, to]) => slot >= from && slot <= to);
}

/** Starts a 3-master, 3-replica cluster (new ports if a server could not start); see the module comment. */
export function startRedisCluster(options: RedisClusterOptions = {}): Promise<TestRedisCluster> {
  return retryingStart(() => startOnce(options));
}

async function startOnce(options: RedisClusterOptions): Promise<TestRedisCluster> {
  const nodeTimeout = options.nodeTimeoutMs ?? 1000;
  const readyMs = options.readyMs ?? 30_000;
  const root = mkdtempSync(join(tmpdir(), "servman-cluster-"));
  ownFolder(root);
  const children = new Map<number, ChildProcess>();
  const pids = new Map<number, number>();
  const argsOf = new Map<number, string[]>();
  const clients: Cluster[] = [];
  const taken = new Set<number>();

  const startNode = (port: number) => {
    const child = spawnRedisServer(argsOf.get(port)!);
    children.set(port, child);
    pids.set(port, child.pid!);
    return child;
  };
  const alive = (port: number) => {
    const child = children.get(port);
    return !!child && child.exitCode === null && child.signalCode === null;
  };
  const livePorts = () => [...children.keys()].filter(alive);
  const stopAll = async () => {
    for (const c of clients) c.disconnect();
    await Promise.all([...children.values()].map(killNow));
    removeFolder(root);
  };

  try {
    for (let i = 0; i < 6; i++) {
      const port = await freePortPair(true, taken);
      taken.add(port);
      argsOf.set(port, [
        ...["--port", String(port), "--bind", "127.0.0.1", "--dir", root],
        ...["--cluster-enabled", "yes", "--cluster-config-file", `nodes-${port}.conf`],
        ...["--cluster-node-timeout", String(nodeTimeout), "--save", "", "--appendonly", "no"],
        // A replica restarted by a test may be promoted however long it was away.
        ...["--cluster-replica-validity-factor", "0"],
        // A replica syncs at once: the default waits 5 s for more replicas before a diskless sync.
        ...["--repl-diskless-sync-delay", "0"],
        ...["--logfile", join(root, `redis-${port}.log`), "--loglevel", "notice"],
      ]);
      startNode(port);
    }
    const ports = [...argsOf.keys()];
    await pollFor(
      async () => {
        assertRunning(children.values());
        const replies = await Promise.all(ports.map((p) => tryAsk(p, undefined, "PING")));
        return replies.every((r) => r === "PONG") ? true : undefined;
      },
      "the 6 servers to answer",
      readyMs,
    );
    await run("redis-cli", ["--cluster", "create", ...ports.map((p) => `127.0.0.1:${p}`), "--cluster-replicas", "1", "--cluster-yes"], { timeout: readyMs });
    await pollFor(async () => ((await Promise.all(ports.map((p) => settled(p)))).every(Boolean) ? true : undefined), "the cluster to be ready", readyMs);
  } catch (err) {
    const logs = [...argsOf.keys()].map((p) => `--- ${p}\n${logTail(join(root, `redis-${p}.log`))}`).join("\n");
    await stopAll();
    if (err instanceof ServerExited) throw err;
    throw new Error(`${(err as Error).message}\n${logs}`);
  }

  /** True once `port` sees a whole, ok cluster of 3 masters and 3 linked replicas. */
  async function settled(port: number): Promise<boolean> {
    const info = await tryAsk(port, undefined, "CLUSTER", "INFO");
    if (typeof info !== "string" || !info.includes("cluster_state:ok") || !info.includes("cluster_slots_ok:16384")) return false;
    const nodes = await tryAsk(port, undefined, "CLUSTER", "NODES");
    if (typeof nodes !== "string") return false;
    const parsed = parseClusterNodes(nodes, pids);
    const masters = parsed.filter((n) => n.role === "master" && n.slots.length > 0 && !n.failing);
    const replicas = parsed.filter((n) => n.role === "replica" && !n.failing && masters.some((m) => m.id === n.masterId));
    if (masters.length !== 3 || replicas.length !== 3) return false;
    const me = parsed.find((n) => n.myself);
    if (me?.role === "replica") {
      const repl = await tryAsk(port, undefined, "INFO", "replication");
      if (typeof repl !== "string" || parseInfo(repl).master_link_status !== "up") return false;
    }
    return true;
  }

  /** The topology as the first live node answering sees it, failing nodes left out. */
  async function topology(): Promise<ClusterNode[]> {
    for (const port of livePorts()) {
      const text = await tryAsk(port, undefined, "CLUSTER", "NODES");
      if (typeof text === "string") return parseClusterNodes(text, pids).filter((n) => !n.failing && alive(n.port));
    }
    throw new Error("no cluster node answers");
  }

  async function slotOf(key: string): Promise<number> {
    for (const port of livePorts()) {
      const slot = await tryAsk(port, undefined, "CLUSTER", "KEYSLOT", key);
      if (typeof slot === "number") return slot;
    }
    throw new Error("no cluster node answers");
  }

  const cluster: TestRedisCluster = {
    startupUrls: [...argsOf.keys()].map((p) => `redis://127.0.0.1:${p}`),
    ports: [...argsOf.keys()],
    async masters() {
      return (await topology()).filter((n) => n.role === "master" && n.slots.length > 0);
    },
    async replicas() {
      return (await topology()).filter((n) => n.role === "replica");
    },
    async masterOf(keyOrSlot) {
      const slot = typeof keyOrSlot === "number" ? keyOrSlot : await slotOf(keyOrSlot);
      const master = (await cluster.masters()).find((n) => serves(n, slot));
      if (!master) throw new Error(`no live master serves slot ${slot}`);
      return master;
    },
    slotOf,
    async kill(port) {
      const child = children.get(port);
      if (!child) throw new Error(`port ${port} is not a node of this cluster`);
      await killNow(child);
    },
    async waitForFailover(oldPort, ms = 30_000) {
      // Which slots the old master had, as the survivors still remember it.
      const before = await pollFor(
        async () => {
          for (const port of livePorts()) {
            const text = await tryAsk(port, undefined, "CLUSTER", "NODES");
            if (typeof text !== "string") continue;
            const old = parseClusterNodes(text, pids).find((n) => n.port === oldPort);
            if (old) return old;
          }
          return undefined;
        },
        `a survivor that knows node ${oldPort}`,
        ms,
      );
      if (before.role === "master" && before.slots.length === 0) throw new Error(`node ${oldPort} was not a master with slots`);
      const probeSlot = before.slots[0]?.[0];
      return pollFor(
        async () => {
          let heir: ClusterNode | undefined;
          for (const port of livePorts()) {
            const info = await tryAsk(port, undefined, "CLUSTER", "INFO");
            if (typeof info !== "string" || !info.includes("cluster_state:ok")) return undefined;
            const text = await tryAsk(port, undefined, "CLUSTER", "NODES");
            if (typeof text !== "string") return undefined;
            const nodes = parseClusterNodes(text, pids);
            const owner = nodes.find((n) => n.role === "master" && (probeSlot === undefined || serves(n, probeSlot)));
            if (!owner || owner.port === oldPort || !alive(owner.port)) return undefined;
            if (!before.slots.every(([from, to]) => serves(owner, from) && serves(owner, to))) return undefined;
            if (heir && heir.port !== owner.port) return undefined;
            heir = owner;
          }
          return heir;
        },
        `a failover of ${oldPort}`,
        ms,
      );
    },
    async restart(port, ms = 30_000) {
      if (alive(port)) throw new Error(`node ${port} is still running`);
      startNode(port);
      await pollFor(
        async () => {
          const text = await tryAsk(port, undefined, "CLUSTER", "NODES");
          const info = await tryAsk(port, undefined, "CLUSTER", "INFO");
          const repl = await tryAsk(port, undefined, "INFO", "replication");
          if (typeof text !== "string" || typeof info !== "string" || typeof repl !== "string") return undefined;
          const me = parseClusterNodes(text, pids).find((n) => n.myself);
          const linked = parseInfo(repl).master_link_status === "up";
          return me?.role === "replica" && info.includes("cluster_state:ok") && linked ? true : undefined;
        },
        `node ${port} to rejoin as a replica`,
        ms,
      );
    },
    client(clientOptions = {}) {
      const client = new Cluster(
        cluster.ports.map((port) => ({ host: "127.0.0.1", port })),
        clientOptions,
      );
      client.on("error", () => {});
      clients.push(client);
      return client;
    },
    async commandStats() {
      const nodes: NodeStats[] = [];
      const totals: Record<string, number> = {};
      for (const port of livePorts()) {
        const stats = await tryAsk(port, undefined, "INFO", "commandstats");
        const cpu = await tryAsk(port, undefined, "INFO", "cpu");
        if (typeof stats !== "string" || typeof cpu !== "string") continue;
        const calls: Record<string, number> = {};
        for (const [field, value] of Object.entries(parseInfo(stats))) {
          if (!field.startsWith("cmdstat_")) continue;
          const name = field.slice("cmdstat_".length);
          const n = Number(/calls=(\d+)/.exec(value)?.[1] ?? 0);
          calls[name] = n;
          totals[name] = (totals[name] ?? 0) + n;
        }
        const c = parseInfo(cpu);
        nodes.push({ port, calls, cpuSeconds: Number(c.used_cpu_sys ?? 0) + Number(c.used_cpu_user ?? 0) });
      }
      return { nodes, totals };
    },
    stop: stopAll,
  };
  return cluster;
}

/** Sends `command` to the node on `port` (for tests that need one node's answer). */
export function askNode(port: number, command: string, ...args: (string | number)[]): Promise<unknown> {
  return ask(port, undefined, command, ...args);
}
