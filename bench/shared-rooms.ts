/**
 * Shared-rooms benchmark: what one room costs on a task with `isolation: "shared"` (rooms as
 * objects of one host process, docs/task-protocol.md#shared-isolation) against the same service
 * with a process per room, on one `servman start`, in the same run:
 *
 * - memory per room: the host's PSS with N rooms in it, divided by N (code and runtime included),
 *   and its growth per room past the first; against the PSS of each process of a process task;
 * - create+join latency: `launch` with `"join": true`, one at a time, alternating a shared room
 *   (placed in the running host, no fork) and a process room (forked; no warm pool on either).
 *
 * The targets (issue #16) are Colyseus's figures as bench/peer measures them: memory per room at
 * most 10 x (~14 KiB: below 140 KiB) and create+join p50 at most 2 x (~4 ms: below 8 ms).
 *
 * The JSON also has where a shared launch's time goes (client -> enqueued, queue wait, picked up ->
 * ready, ready -> client), from sequential launches without join.
 *
 *   node dist/bench/shared-rooms.js   (BENCH_SHARED_ROOMS 100, BENCH_SHARED_PROCESS_ROOMS 10, BENCH_SHARED_LAUNCHES 30)
 */
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { startServman, type ServmanProcess } from "./lib/child-processes.js";
import { mapLimit, sleep } from "./lib/concurrency.js";
import { envInt } from "./lib/env.js";
import { breakdown, launchOne, stopAll, type LaunchTrace } from "./lib/launch-client.js";
import { processesBelow, stopAndCheck } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { ECHO_SERVICE } from "./lib/paths.js";
import { memoryOf, rssKb, sumMemory } from "./lib/proc-memory.js";
import { startRedis } from "./lib/redis.js";
import { metric, soloMetric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { round, summarize } from "./lib/stats.js";
import { ServmanWire } from "./lib/wire-client.js";

const ROOMS = envInt("BENCH_SHARED_ROOMS", 100);
const PROCESS_ROOMS = envInt("BENCH_SHARED_PROCESS_ROOMS", 10);
const SEQ = envInt("BENCH_SHARED_LAUNCHES", 30);
const WARMUP = 3;
const SETTLE_MS = 3000;
/** Quiet before each timed launch: the previous pair's stops (a process exiting) are over. */
const GAP_MS = 150;
/** Colyseus's figures as bench/peer measured them (issue #16), for the absolute targets. */
const COLYSEUS_ROOM_KIB = 14;
const COLYSEUS_CREATE_JOIN_MS = 4;

const SHARED = "rooms";
const PROCESS = "echo";

function hostPids(serverPid: number): number[] {
  return processesBelow(serverPid)
    .filter((p) => p.cmd.includes("shared-host-runner"))
    .map((p) => p.pid);
}

function processPids(serverPid: number): number[] {
  return processesBelow(serverPid)
    .filter((p) => p.cmd.includes(ECHO_SERVICE) && !p.cmd.includes("shared-host-runner"))
    .map((p) => p.pid);
}

async function launchMany(client: ServmanWire, task: string, count: number): Promise<string[]> {
  const replies = await mapLimit(count, 8, () => client.request({ type: "launch", task, options: { timeoutMs: 300_000 } }, 400_000));
  return replies.map((r) => String(r.instance));
}

/** PSS per room of a shared host with ROOMS rooms, and of process rooms; the server's growth per shared room. */
async function measureMemory(ctx: BenchContext, server: ServmanProcess, client: ServmanWire): Promise<void> {
  say(`memory: ${ROOMS} shared rooms in one host, against ${PROCESS_ROOMS} rooms with a process each`);
  const first = await launchMany(client, SHARED, 1);
  await sleep(SETTLE_MS);
  const [host] = hostPids(server.pid);
  const oneRoom = memoryOf(host);
  const serverBefore = rssKb(server.pid);
  const rest = await launchMany(client, SHARED, ROOMS - 1);
  await sleep(SETTLE_MS);
  const hosts = hostPids(server.pid);
  const full = memoryOf(host);
  const serverGrowth = (rssKb(server.pid) - serverBefore) / Math.max(1, ROOMS - 1);
  const perRoom = full.pssKb / ROOMS;
  const marginal = (full.pssKb - oneRoom.pssKb) / Math.max(1, ROOMS - 1);
  say(
    `  host PSS ${Math.round(oneRoom.pssKb / 1024)} MiB with 1 room, ${Math.round(full.pssKb / 1024)} MiB with ${ROOMS}: ${round(perRoom, 1)} KiB per room, ${round(marginal, 1)} KiB per added room`,
  );
  say(`  servman start (gateway + node) RSS growth: ${round(serverGrowth, 1)} KiB per room`);
  ctx.check(`${ROOMS} rooms in one host process`, hosts.length === 1, `${hosts.length} host processes`);

  const processes = await launchMany(client, PROCESS, PROCESS_ROOMS);
  await sleep(SETTLE_MS);
  const own = sumMemory(processPids(server.pid));
  const perProcess = own.pssKb / Math.max(1, own.count);
  say(`  process rooms: ${own.count} processes, PSS ${round(perProcess, 1)} KiB each`);
  await stopAll(client, [...first, ...rest, ...processes]);

  Object.assign(ctx.servman, {
    hostPssKbOneRoom: oneRoom.pssKb,
    hostPssKb: full.pssKb,
    hostUssKb: full.ussKb,
    pssKbPerRoom: round(perRoom, 1),
    pssKbPerAddedRoom: round(marginal, 1),
    serverRssKbPerRoom: round(serverGrowth, 1),
  });
  ctx.floor.pssKbPerProcessRoom = round(perProcess, 1);
  ctx.metrics.push(
    metric("pssPerRoom", `memory per room: host PSS / ${ROOMS} rooms vs PSS per room process`, "KiB", "lower", round(perRoom, 1), round(perProcess, 1), { below: COLYSEUS_ROOM_KIB * 10 }),
    soloMetric("pssPerAddedRoom", "host PSS growth per room past the first", "KiB", "lower", round(marginal, 1)),
    soloMetric("serverPerRoom", "servman start (gateway + node) RSS growth per shared room", "KiB", "lower", round(serverGrowth, 1)),
  );
}

/** create+join latency, alternating a shared room and a process room, each stopped outside the timing. */
async function measureCreateJoin(ctx: BenchContext, client: ServmanWire): Promise<void> {
  say(`create+join: ${SEQ} launches with join:true of each, alternating shared and process rooms (no warm pool)`);
  // One room stays throughout, so the host never goes idle between two measured launches.
  const [anchor] = await launchMany(client, SHARED, 1);
  const shared: number[] = [];
  const own: number[] = [];
  let joined = 0;
  for (let i = 0; i < WARMUP + SEQ; i++) {
    const timed = async (task: string, into: number[]) => {
      await sleep(GAP_MS);
      const start = performance.now();
      const reply = await client.request({ type: "launch", task, join: true, options: { timeoutMs: 300_000 } }, 400_000);
      const ms = performance.now() - start;
      await stopAll(client, [String(reply.instance)]);
      if (i < WARMUP) return;
      into.push(ms);
      if (reply.joined === true) joined++;
    };
    await timed(SHARED, shared);
    await timed(PROCESS, own);
  }
  await stopAll(client, [anchor]);
  const s = summarize(shared);
  const p = summarize(own);
  say(`  shared p50 ${s.p50Ms} ms (p99 ${s.p99Ms}); process p50 ${p.p50Ms} ms (p99 ${p.p99Ms})`);
  ctx.check("every launch with join:true answered joined:true", joined === 2 * SEQ, `${joined} of ${2 * SEQ}`);
  ctx.servman.createJoin = s;
  ctx.floor.createJoin = p;
  ctx.metrics.push(
    metric("createJoinP50", "create+join p50 (launch join:true): shared room vs process room", "ms", "lower", s.p50Ms, p.p50Ms, { below: COLYSEUS_CREATE_JOIN_MS * 2 }),
    metric("createJoinP99", "create+join p99: shared room vs process room", "ms", "lower", s.p99Ms, p.p99Ms),
  );
}

/** Where a sequential shared launch's time goes (medians, ms), from the BullMQ jobs and the registry. */
async function measureBreakdown(ctx: BenchContext, client: ServmanWire, redisUrl: string, prefix: string): Promise<void> {
  const traces: LaunchTrace[] = [];
  for (let i = 0; i < SEQ; i++) {
    await sleep(GAP_MS);
    traces.push(await launchOne(client, SHARED));
  }
  const parts = await breakdown(redisUrl, prefix, traces, SHARED);
  await stopAll(
    client,
    traces.map((t) => t.instance),
  );
  say(
    `  a shared launch, p50 of each part: ${Object.entries(parts)
      .map(([k, v]) => `${k} ${v} ms`)
      .join(", ")}`,
  );
  ctx.servman.launchBreakdown = parts;
}

await runBenchmark("shared-rooms", "Shared rooms: memory and create+join of isolation shared against a process per room", async (ctx) => {
  ctx.params = { rooms: ROOMS, processRooms: PROCESS_ROOMS, sequential: SEQ, warmup: WARMUP, settleMs: SETTLE_MS, gapMs: GAP_MS };
  ctx.notes.push(`targets: below 10 x Colyseus's ${COLYSEUS_ROOM_KIB} KiB per room and 2 x its ${COLYSEUS_CREATE_JOIN_MS} ms create+join p50 (issue #16; bench/peer measures Colyseus)`);
  const redis = await startRedis();
  const config = writeBenchConfig({
    redisUrl: redis.url,
    capacity: ROOMS + PROCESS_ROOMS + 10,
    tasks: { [SHARED]: { module: ECHO_SERVICE, isolation: "shared", instancesPerProcess: ROOMS + 10 } },
  });
  let server: ServmanProcess | undefined;
  let client: ServmanWire | undefined;
  try {
    server = await startServman(["start", "--config", config.path, "--port", "0"]);
    client = await ServmanWire.connect(server.url!);
    await measureMemory(ctx, server, client);
    await measureCreateJoin(ctx, client);
    await measureBreakdown(ctx, client, redis.url, config.prefix);
  } finally {
    await client?.close();
    if (server) await stopAndCheck(ctx, "servman stopped cleanly and left no process", server, true);
    config.remove();
    await redis.stop();
  }
});
