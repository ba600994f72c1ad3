/**
 * The Colyseus side of bench/peer.ts: the Colyseus 0.18 server (colyseus-server.ts) in a process
 * of its own, clients on `@colyseus/sdk`. With `redis`, the server runs with RedisPresence and
 * RedisDriver on a redis-server of its own (a scaled deployment, on one process here), whose CPU
 * is counted with the server's.
 */
import { join } from "node:path";
import { Client, type Room } from "@colyseus/sdk";
import { alive } from "../../test/helpers/processes.js";
import type { BenchContext } from "../lib/bench-runner.js";
import { startScript, type ScriptProcess } from "../lib/child-processes.js";
import { mapLimit, sleep } from "../lib/concurrency.js";
import { stopAndCheck } from "../lib/leftovers.js";
import { BENCH_DIST } from "../lib/paths.js";
import { startRedis, type BenchRedis } from "../lib/redis.js";
import type { PeerSystem } from "./peer-system.js";
import { colyseusRoomClient } from "./room-clients.js";

/** The compiled server script. */
const COLYSEUS_SERVER = join(BENCH_DIST, "peer", "colyseus-server.js");

export interface ColyseusSideOptions {
  /** Its key in the results: `colyseus`, `colyseusRedis`. */
  key: string;
  label: string;
  /** Run with RedisPresence and RedisDriver on a redis-server of its own. */
  redis: boolean;
  /** Quiet time before each create+join. */
  settleMs: number;
}

/** Starts the server; what was started is stopped again if a step fails. */
export async function startColyseusSide(ctx: BenchContext, options: ColyseusSideOptions): Promise<PeerSystem> {
  let redis: BenchRedis | undefined;
  let server: ScriptProcess<{ url: string }> | undefined;
  const rooms: Room[] = [];

  const stop = async (check: BenchContext) => {
    await Promise.allSettled(rooms.map((r) => r.leave(true)));
    if (server) await stopAndCheck(check, `${options.label}: stopped cleanly and left no process`, server, true);
    if (redis) {
      await redis.stop();
      check.check(`${options.label}: its redis-server ended`, !alive(redis.pid), `pid ${redis.pid}`);
    }
  };

  try {
    if (options.redis) redis = await startRedis();
    // --expose-gc: memory is read after a full collection (see beforeMemory).
    server = await startScript<{ url: string }>("colyseus-server", redis ? [redis.url] : [], { path: COLYSEUS_SERVER, execArgv: ["--expose-gc"] });
  } catch (err) {
    await stop(ctx);
    throw err;
  }
  const running = server;
  const sdk = new Client(running.ready.url);
  const serverPids = () => [running.pid, ...(redis ? [redis.pid] : [])];

  return {
    key: options.key,
    label: options.label,
    async openRooms(count, clients) {
      const created = await mapLimit(count, 8, () => sdk.create("peer"));
      const joined = await mapLimit(clients - count, 20, (c) => sdk.joinById(created[(c + count) % count].roomId));
      rooms.push(...created, ...joined);
      // Client c is in room c mod count: the creators first, then the others in order.
      return [...created, ...joined].map(colyseusRoomClient);
    },
    groups: () => ({ colyseus: [running.pid], ...(redis ? { redis: [redis.pid] } : {}) }),
    roomPids: serverPids,
    async createIdleRooms(count) {
      await running.request("createRooms", { count });
    },
    async removeIdleRooms() {
      await running.request("disposeRooms");
    },
    async beforeMemory() {
      await running.request("gc");
    },
    createJoins: [
      {
        key: options.key,
        label: `${options.label}: client.create()`,
        prepare: () => sleep(options.settleMs),
        async run() {
          const start = performance.now();
          const room = await sdk.create("peer");
          const ms = performance.now() - start;
          await room.leave(true);
          return ms;
        },
      },
    ],
    stop,
  };
}
