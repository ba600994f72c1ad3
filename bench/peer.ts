/**
 * Servman measured side by side with Colyseus 0.18, what a Servman user would most likely pick
 * instead, in the same run: the same room logic on both (`echo` back to the sender, `bcast` to
 * every client in the room: services/echo-service.ts, peer/colyseus-room.ts), each system's own
 * client SDK in this process, each server in processes of its own (Servman: `servman node` and
 * `servman gateway` on a redis-server of their own; Colyseus: one process, peer/colyseus-server.ts).
 *
 * Measures, each the median of BENCH_PEER_ROUNDS interleaved rounds (every round runs every
 * measure on every system, so a burst of other load hits both): echo round trip p50 / p99 and
 * server CPU per round trip (1 client, sequential, the systems taking turns round by round),
 * round trips/s of BENCH_PEER_CLIENTS clients in BENCH_PEER_ROOMS rooms each keeping
 * BENCH_PEER_WINDOW echoes in flight, broadcast deliveries/s and server CPU per delivery (1 room x
 * BENCH_PEER_MEMBERS clients), create+join p50 / p99 (Servman: `launch` with `join: true`, with a
 * warm pool and without; Colyseus: `client.create()`). Before all that, once, on systems no client
 * used yet: memory per idle room (PSS growth over BENCH_PEER_SERVMAN_ROOMS /
 * BENCH_PEER_COLYSEUS_ROOMS rooms, which are then ended).
 *
 * Variants: a Servman deployment whose room task has `isolation: "shared"` (BENCH_PEER_SHARED=0
 * leaves it out; its memory is measured over BENCH_PEER_SHARED_ROOMS rooms, as many as Colyseus's);
 * BENCH_PEER_COLYSEUS_REDIS=1 adds a Colyseus server with RedisPresence and RedisDriver.
 *
 *   node dist/bench/peer.js   (sizes: BENCH_PEER_ROUNDS, _ECHOES, _WARMUP, _CLIENTS, _ROOMS, _WINDOW,
 *   _SECONDS, _MEMBERS, _BCAST_WINDOW, _JOINS, _SETTLE_MS, _SERVMAN_ROOMS, _COLYSEUS_ROOMS,
 *   _SHARED_ROOMS)
 */
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { envInt } from "./lib/env.js";
import { say } from "./lib/output.js";
import { comparisonMetrics, cpuSplitMetrics, summarizeCreateJoin, summarizeSystem, type ComparisonTargets, type SystemRounds, type SystemSummary } from "./peer/peer-metrics.js";
import { metric, type Metric } from "./lib/results.js";
import { startColyseusSide } from "./peer/colyseus-side.js";
import type { PeerSystem } from "./peer/peer-system.js";
import { rejectedTaskKeys, startServmanSide } from "./peer/servman-side.js";
import { broadcastRun, createJoinRuns, echoRuns, loadRun, memoryRun, type Contender, type CreateJoinRun, type MemoryRun, type WorkloadSizes } from "./peer/workloads.js";

const ROUNDS = envInt("BENCH_PEER_ROUNDS", 3);
const CLIENTS = envInt("BENCH_PEER_CLIENTS", 100);
const ROOMS = Math.min(CLIENTS, envInt("BENCH_PEER_ROOMS", 10));
const MEMBERS = envInt("BENCH_PEER_MEMBERS", 100);
const JOINS = envInt("BENCH_PEER_JOINS", 10);
const SETTLE_MS = envInt("BENCH_PEER_SETTLE_MS", 200, 0);
const SERVMAN_ROOMS = envInt("BENCH_PEER_SERVMAN_ROOMS", 50);
const COLYSEUS_ROOMS = envInt("BENCH_PEER_COLYSEUS_ROOMS", 1000);
/** Shared rooms are as light as Colyseus's: measured over as many, so a host's own cost is spread alike. */
const SHARED_ROOMS = envInt("BENCH_PEER_SHARED_ROOMS", COLYSEUS_ROOMS);
/** The shared-isolation variant runs unless BENCH_PEER_SHARED=0. */
const SHARED = process.env.BENCH_PEER_SHARED !== "0";
const COLYSEUS_REDIS = process.env.BENCH_PEER_COLYSEUS_REDIS === "1";
const SIZES: WorkloadSizes = {
  echoWarmup: envInt("BENCH_PEER_WARMUP", 200, 0),
  echoRounds: envInt("BENCH_PEER_ECHOES", 2000),
  window: envInt("BENCH_PEER_WINDOW", 10),
  warmupMs: 1000,
  durationMs: envInt("BENCH_PEER_SECONDS", 3) * 1000,
  broadcastWindow: envInt("BENCH_PEER_BCAST_WINDOW", 4),
};
/** The warm pool of the Servman task the warm create+join uses. */
const WARM = 2;
/** Create+joins per series before the first measured one. */
const JOIN_WARMUP = 2;
const SHARED_KEYS = { isolation: "shared" };

/** The targets of issue #16 on Servman / Colyseus. */
const MAIN_TARGETS: ComparisonTargets = { echoP50: { maxRatio: 3 }, echoP99: { maxRatio: 2 }, echoCpu: { maxRatio: 2 }, deliveryCpu: { maxRatio: 1.3 } };
const SHARED_TARGETS: ComparisonTargets = { memory: { maxRatio: 10 } };

/** Starts every system asked for: Colyseus first, then Servman. */
async function startSystems(ctx: BenchContext, systems: PeerSystem[]): Promise<void> {
  const capacity = 1 + ROOMS + 1 + SERVMAN_ROOMS + WARM + 10;
  systems.push(await startColyseusSide(ctx, { key: "colyseus", label: "colyseus", redis: false, settleMs: SETTLE_MS }));
  if (COLYSEUS_REDIS) systems.push(await startColyseusSide(ctx, { key: "colyseusRedis", label: "colyseus+redis", redis: true, settleMs: SETTLE_MS }));
  systems.push(await startServmanSide(ctx, { key: "servman", label: "servman", taskKeys: {}, warm: WARM, capacity, settleMs: SETTLE_MS }));
  if (!SHARED) return;
  const refused = rejectedTaskKeys(SHARED_KEYS);
  if (refused !== null) {
    const note = `the shared-isolation variant was skipped: this version of Servman refuses ${JSON.stringify(SHARED_KEYS)} on a task (${refused})`;
    say(note);
    ctx.notes.push(note);
    return;
  }
  const sharedCapacity = capacity - SERVMAN_ROOMS + SHARED_ROOMS;
  systems.push(await startServmanSide(ctx, { key: "servmanShared", label: "servman shared", taskKeys: SHARED_KEYS, warm: 0, capacity: sharedCapacity, settleMs: SETTLE_MS }));
}

/** Opens each system's clients: one alone in a room, the pipelined load's, the broadcast room's. */
async function openClients(systems: readonly PeerSystem[]): Promise<Contender[]> {
  const contenders: Contender[] = [];
  for (const system of systems) {
    say(`${system.label}: opening 1 + ${CLIENTS} + ${MEMBERS} clients in 1 + ${ROOMS} + 1 rooms`);
    const [echo] = await system.openRooms(1, 1);
    const load = await system.openRooms(ROOMS, CLIENTS);
    const members = await system.openRooms(1, MEMBERS);
    contenders.push({ system, echo, load, members });
  }
  return contenders;
}

/** Memory per idle room of each system, on systems no client used yet. */
async function measureMemory(systems: readonly PeerSystem[]): Promise<Record<string, MemoryRun>> {
  const memory: Record<string, MemoryRun> = {};
  for (const system of systems) {
    say(`${system.label}: memory per idle room`);
    const rooms = system.key === "servmanShared" ? SHARED_ROOMS : system.key.startsWith("servman") ? SERVMAN_ROOMS : COLYSEUS_ROOMS;
    memory[system.key] = await memoryRun(system, rooms, 1000);
  }
  return memory;
}

/** Every measure but memory on every system, `ROUNDS` times. */
async function measure(contenders: readonly Contender[]) {
  const rounds: Record<string, SystemRounds> = Object.fromEntries(contenders.map((c) => [c.system.key, { echo: [], load: [], broadcast: [] }]));
  const joins: Record<string, CreateJoinRun[]> = {};
  for (let r = 1; r <= ROUNDS; r++) {
    // Pipelined and broadcast runs go one system at a time, in turn, the order reversed every other round.
    const inTurn = r % 2 === 1 ? contenders : [...contenders].reverse();
    say(`round ${r} of ${ROUNDS}: echo (${SIZES.echoWarmup} + ${SIZES.echoRounds} round trips), pipelined, broadcast, create+join (${JOINS} each)`);
    const echo = await echoRuns(contenders, SIZES);
    contenders.forEach((c, i) => rounds[c.system.key].echo.push(echo[i]));
    for (const c of inTurn) rounds[c.system.key].load.push(await loadRun(c, SIZES));
    for (const c of inTurn) rounds[c.system.key].broadcast.push(await broadcastRun(c, SIZES));
    const created = await createJoinRuns(contenders, r === 1 ? JOIN_WARMUP : 0, JOINS);
    for (const [key, run] of Object.entries(created)) (joins[key] ??= []).push(run);
  }
  return { rounds, joins };
}

/** The create+join rows of one Servman series against Colyseus. */
function createJoinMetrics(key: string, what: string, series: Record<string, { p50Ms: number; p99Ms: number }>, p50Target?: number): Metric[] {
  const s = series[key];
  const c = series.colyseus;
  if (!s) return [];
  return [
    metric(`createJoin.${key}.p50`, `create+join p50: ${what} vs client.create()`, "ms", "lower", s.p50Ms, c?.p50Ms ?? null, p50Target !== undefined ? { maxRatio: p50Target } : undefined),
    metric(`createJoin.${key}.p99`, `create+join p99: ${what} vs client.create()`, "ms", "lower", s.p99Ms, c?.p99Ms ?? null),
  ];
}

await runBenchmark("peer", "Servman and Colyseus 0.18: the same rooms, in the same run", async (ctx) => {
  ctx.params = {
    rounds: ROUNDS,
    clients: CLIENTS,
    rooms: ROOMS,
    members: MEMBERS,
    joins: JOINS,
    joinWarmup: JOIN_WARMUP,
    settleMs: SETTLE_MS,
    warm: WARM,
    servmanRooms: SERVMAN_ROOMS,
    colyseusRooms: COLYSEUS_ROOMS,
    sharedRooms: SHARED_ROOMS,
    shared: SHARED,
    colyseusRedis: COLYSEUS_REDIS,
    ...SIZES,
  };
  ctx.notes.push(
    "floor = Colyseus 0.18 (@colyseus/core + ws-transport, one process); servman = servman node + servman gateway + redis-server; ratios are servman / colyseus",
    `each figure is the median of ${ROUNDS} rounds; echoes take turns round by round, pipelined and broadcast runs take turns, create+joins take turns one by one`,
  );
  const systems: PeerSystem[] = [];
  try {
    await startSystems(ctx, systems);
    const memory = await measureMemory(systems);
    const contenders = await openClients(systems);
    const { rounds, joins } = await measure(contenders);
    const summaries: Record<string, SystemSummary> = Object.fromEntries(Object.entries(rounds).map(([key, r]) => [key, summarizeSystem(r)]));
    const series = Object.fromEntries(Object.entries(joins).map(([key, runs]) => [key, summarizeCreateJoin(runs)]));
    const sizes = { clients: CLIENTS, rooms: ROOMS, window: SIZES.window, members: MEMBERS };
    const colyseus = summaries.colyseus;
    const servman = summaries.servman;
    ctx.floor = { ...colyseus, createJoin: series.colyseus, memory: memory.colyseus, rounds: rounds.colyseus };
    ctx.servman = { ...servman, createJoin: { warm: series.servmanWarm, cold: series.servmanCold }, memory: memory.servman, rounds: rounds.servman };
    ctx.metrics.push(
      ...comparisonMetrics("", "", servman, colyseus, { servman: memory.servman, colyseus: memory.colyseus }, sizes, MAIN_TARGETS),
      ...createJoinMetrics("servmanWarm", `launch join:true, warm: ${WARM}`, series, 3),
      ...createJoinMetrics("servmanCold", "launch join:true, no warm pool", series),
      ...cpuSplitMetrics("echoCpu", "CPU per echo round trip", servman.echoCpuUs),
      ...cpuSplitMetrics("deliveryCpu", "CPU per broadcast delivery", servman.deliveryCpuUs),
    );
    const shared = summaries.servmanShared;
    if (shared) {
      ctx.servman.shared = { ...shared, createJoin: series.servmanSharedCold, memory: memory.servmanShared, rounds: rounds.servmanShared };
      ctx.metrics.push(
        ...comparisonMetrics("shared", "shared: ", shared, colyseus, { servman: memory.servmanShared, colyseus: memory.colyseus }, sizes, SHARED_TARGETS),
        ...createJoinMetrics("servmanSharedCold", "shared, launch join:true, no warm pool", series, 2),
      );
    }
    const scaled = summaries.colyseusRedis;
    if (scaled) {
      ctx.floor.redis = { ...scaled, createJoin: series.colyseusRedis, memory: memory.colyseusRedis, rounds: rounds.colyseusRedis };
      ctx.metrics.push(...comparisonMetrics("vsRedis", "vs colyseus+redis: ", servman, scaled, { servman: memory.servman, colyseus: memory.colyseusRedis }, sizes, {}));
    }
    for (const [key, s] of Object.entries(summaries)) {
      ctx.check(`no echo lost (${key})`, s.lost === 0, `${s.lost} of ${s.sent} unanswered`);
      ctx.check(`no broadcast delivery lost (${key})`, s.broadcastsLost === 0, `${s.broadcastsLost} missing`);
    }
  } finally {
    for (const system of systems) await system.stop(ctx).catch((err: Error) => say(`stopping ${system.label} failed: ${err.message}`));
  }
});
