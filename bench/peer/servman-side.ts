/**
 * The Servman side of bench/peer.ts: a deployment as users run one (`servman node` and
 * `servman gateway` in processes of their own, so each one's CPU is read apart) on a redis-server
 * of its own, the room as a `module` task (the bench echo service, services/echo-service.ts: its
 * `echo` and `bcast` are the Colyseus room's), and clients on `ServmanClient`.
 *
 * Tasks: `room` (every room of the workloads and the create+join without warm pool) and, with
 * `warm`, `room-warm` (the same service with a warm pool). `taskKeys` go on both, so a variant
 * (`{isolation: "shared"}`) is one more set of keys.
 */
import { ServmanClient } from "../../src/client/servman-client.js";
import { loadConfig } from "../../src/config/load-config.js";
import { alive } from "../../test/helpers/processes.js";
import type { BenchContext } from "../lib/bench-runner.js";
import { startServman, type ServmanProcess } from "../lib/child-processes.js";
import { mapLimit, sleep } from "../lib/concurrency.js";
import { processesBelow, survivors } from "../lib/leftovers.js";
import { ECHO_SERVICE } from "../lib/paths.js";
import { startRedis } from "../lib/redis.js";
import { writeBenchConfig } from "../lib/servman-config.js";
import type { CreateJoinSeries, PeerSystem } from "./peer-system.js";
import { servmanRoomClient } from "./room-clients.js";

/** The room: the compiled bench echo service. */
const SERVMAN_ROOM = ECHO_SERVICE;

export interface ServmanSideOptions {
  /** Its key in the results: `servman`, `servmanShared`. */
  key: string;
  label: string;
  /** Keys added to every room task. */
  taskKeys: Record<string, unknown>;
  /** Warm pool of the `room-warm` task; 0: no such task. */
  warm: number;
  /** Live instances the node may hold. */
  capacity: number;
  /** Quiet time before each create+join. */
  settleMs: number;
}

/** The room tasks of a configuration with `options`. */
function roomTasks(options: Pick<ServmanSideOptions, "taskKeys" | "warm">): Record<string, Record<string, unknown>> {
  // emptyTimeoutMs 0: rooms with no client stay up (the memory measure), as Colyseus rooms made with `keep`.
  const room = { module: SERVMAN_ROOM, emptyTimeoutMs: 0, ...options.taskKeys };
  return options.warm > 0 ? { room, "room-warm": { ...room, warm: options.warm } } : { room };
}

/**
 * Why this version of Servman refuses a configuration with `taskKeys` on the room tasks (its
 * schema rejects unknown keys), or null when it takes them.
 */
export function rejectedTaskKeys(taskKeys: Record<string, unknown>): string | null {
  const config = writeBenchConfig({ redisUrl: "redis://127.0.0.1:6379", capacity: 1, tasks: roomTasks({ taskKeys, warm: 0 }) });
  try {
    loadConfig({ config: config.path }, {});
    return null;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  } finally {
    config.remove();
  }
}

/** Starts the deployment; what was started is stopped again if a step fails. */
export async function startServmanSide(ctx: BenchContext, options: ServmanSideOptions): Promise<PeerSystem> {
  const redis = await startRedis();
  const config = writeBenchConfig({ redisUrl: redis.url, capacity: options.capacity, tasks: roomTasks(options) });
  const processes: ServmanProcess[] = [];
  const clients: ServmanClient[] = [];
  /** Instances up (each a process, without `taskKeys`), to know when a warm pool is full again. */
  let liveRooms = 0;
  /** Instances made by `createIdleRooms`. */
  const idle: string[] = [];

  const connect = async () => {
    const client = new ServmanClient(processes[1].url!);
    clients.push(client);
    await client.connect();
    return client;
  };

  const stop = async (check: BenchContext) => {
    await Promise.allSettled(clients.map((c) => c.close()));
    const below = processes.flatMap((p) => processesBelow(p.pid));
    const codes: (number | null)[] = [];
    // The gateway first, so the node's drain is not reported to connected clients.
    for (const p of [...processes].reverse()) codes.push(await p.stop());
    const left = survivors(below);
    check.check(
      `${options.label}: stopped cleanly and left no process`,
      codes.every((c) => c === 0) && left.length === 0,
      `exit codes ${codes.join(", ")}, ${left.length} of ${below.length} still running`,
    );
    const warnings = processes.flatMap((p) => p.stderr().split("\n")).filter((l) => l.trim() !== "" && !/Ctrl-C to stop/.test(l));
    if (warnings.length > 0) check.notes.push(`${options.label} logged ${warnings.length} lines at warn or above, first: ${warnings[0].slice(0, 300)}`);
    config.remove();
    await redis.stop();
    check.check(`${options.label}: its redis-server ended`, !alive(redis.pid), `pid ${redis.pid}`);
  };

  let owner: ServmanClient;
  let launcher: ServmanClient;
  try {
    processes.push(await startServman(["node", "--config", config.path]));
    processes.push(await startServman(["gateway", "--config", config.path, "--port", "0"]));
    owner = await connect();
    launcher = await connect();
  } catch (err) {
    await stop(ctx);
    throw err;
  }
  const [node, gateway] = processes;

  /** Waits until the warm pool is full (every live room and `warm` waiting processes), then the settle time. */
  const quiet = async () => {
    if (options.warm > 0) {
      const expected = liveRooms + options.warm;
      const end = Date.now() + 60_000;
      while (processesBelow(node.pid).filter((p) => p.cmd.includes(SERVMAN_ROOM)).length !== expected) {
        if (Date.now() > end) throw new Error(`${options.label}: expected ${expected} room processes below the node`);
        await sleep(10);
      }
    }
    await sleep(options.settleMs);
  };

  /** One launch with `join: true`, timed; then the instance is stopped (until its process exited), untimed. */
  const launchJoin = async (task: string) => {
    const start = performance.now();
    const result = await launcher.launch(task, { join: true });
    const ms = performance.now() - start;
    if (result.joined !== true) throw new Error(`${options.label}: launch of ${task} with join:true was not joined (${result.reason ?? ""})`);
    await launcher.stop(result.instance);
    return ms;
  };

  const launchRooms = async (count: number) => {
    const ids = await mapLimit(count, 8, async () => (await owner.launch("room")).instance);
    liveRooms += count;
    return ids;
  };

  const createJoins: CreateJoinSeries[] = [];
  if (options.warm > 0) {
    createJoins.push({ key: `${options.key}Warm`, label: `${options.label}: launch join:true, warm: ${options.warm}`, prepare: quiet, run: () => launchJoin("room-warm") });
  }
  createJoins.push({ key: `${options.key}Cold`, label: `${options.label}: launch join:true, no warm pool`, prepare: quiet, run: () => launchJoin("room") });

  return {
    key: options.key,
    label: options.label,
    async openRooms(rooms, count) {
      const ids = await launchRooms(rooms);
      return mapLimit(count, 20, async (c) => {
        const client = await connect();
        await client.join(ids[c % rooms]);
        return servmanRoomClient(client, ids[c % rooms]);
      });
    },
    groups: () => ({ gateway: [gateway.pid], node: [node.pid], instances: processesBelow(node.pid).map((p) => p.pid), redis: [redis.pid] }),
    roomPids: () => [node.pid, ...processesBelow(node.pid).map((p) => p.pid)],
    async createIdleRooms(count) {
      idle.push(...(await launchRooms(count)));
    },
    async removeIdleRooms() {
      const ids = idle.splice(0);
      // Each stop resolves once the instance's process exited.
      await mapLimit(ids.length, 16, (i) => owner.stop(ids[i]));
      liveRooms -= ids.length;
    },
    beforeMemory: () => Promise.resolve(),
    createJoins,
    stop,
  };
}
