/**
 * The measures of bench/peer.ts, each run the same way on every system: sequential echoes (taking
 * turns between the systems round by round), pipelined echoes, broadcasts, create+join (taking
 * turns) and memory per room. CPU is read from /proc for each system's own server processes, by
 * group, over exactly the work counted.
 */
import { sleep } from "../lib/concurrency.js";
import { cpuDelta, cpuSnapshot, perUnit, type CpuGroups, type CpuSnapshot } from "../lib/cpu-time.js";
import { say } from "../lib/output.js";
import { sumMemory } from "../lib/proc-memory.js";
import { pipelinedLoad, sequentialRoundTrips } from "../lib/relay-load.js";
import { round, summarize } from "../lib/stats.js";
import { broadcastLoad } from "./broadcast-load.js";
import type { PeerSystem } from "./peer-system.js";
import type { RoomClient } from "./room-clients.js";

/** A system with its clients open: one alone in a room, the pipelined load's, a broadcast room's. */
export interface Contender {
  system: PeerSystem;
  echo: RoomClient;
  load: RoomClient[];
  members: RoomClient[];
}

/** CPU µs per unit per group, and `total` over the server's groups (`client`, when there, is not in it). */
export type CpuPerUnit = Record<string, number>;

/** The group of the benchmark process itself, where every client runs: not server CPU. */
const CLIENT = "client";

/** Sizes of the measures. */
export interface WorkloadSizes {
  echoWarmup: number;
  echoRounds: number;
  window: number;
  warmupMs: number;
  durationMs: number;
  broadcastWindow: number;
}

function withTotal(cpuMs: CpuSnapshot, count: number): CpuPerUnit {
  const per = perUnit(cpuMs, count);
  const server = Object.entries(per).filter(([group]) => group !== CLIENT);
  return {
    ...per,
    total: round(
      server.reduce((sum, [, us]) => sum + us, 0),
      1,
    ),
  };
}

/**
 * Reads `groups`, and the client side (this process: when one system runs at a time, its CPU is
 * that system's clients'), when the measured interval starts and ends.
 */
function cpuWindow(serverGroups: CpuGroups) {
  const groups = { ...serverGroups, [CLIENT]: [process.pid] };
  let before: CpuSnapshot = {};
  let after: CpuSnapshot = {};
  return {
    hooks: { onMeasureStart: () => (before = cpuSnapshot(groups)), onMeasureEnd: () => (after = cpuSnapshot(groups)) },
    used: () => cpuDelta(before, after),
  };
}

/** One sequential echo run of one system. */
export interface EchoRun {
  p50Ms: number;
  p99Ms: number;
  /** Server CPU µs per round trip (warm-up included), per group and in total. */
  cpuUsPerRoundTrip: CpuPerUnit;
}

/** Sequential echoes, one client per system, the systems taking turns round by round. */
export async function echoRuns(contenders: readonly Contender[], sizes: WorkloadSizes): Promise<EchoRun[]> {
  const groups = contenders.map((c) => c.system.groups());
  const before = groups.map((g) => cpuSnapshot(g));
  const samples = await sequentialRoundTrips(
    contenders.map((c) => c.echo),
    (_p, i) => ({ seq: i }),
    sizes.echoWarmup,
    sizes.echoRounds,
  );
  return contenders.map((c, p) => {
    const { p50Ms, p99Ms } = summarize(samples[p]);
    const cpuUsPerRoundTrip = withTotal(cpuDelta(before[p], cpuSnapshot(groups[p])), sizes.echoWarmup + sizes.echoRounds);
    say(`  ${c.system.label} echo: p50 ${p50Ms} ms, p99 ${p99Ms} ms; server CPU µs per round trip ${JSON.stringify(cpuUsPerRoundTrip)}`);
    return { p50Ms, p99Ms, cpuUsPerRoundTrip };
  });
}

/** One pipelined run of one system. */
export interface LoadRun {
  roundTripsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  sent: number;
  lost: number;
  cpuUsPerRoundTrip: CpuPerUnit;
}

/** Every client of the load keeps `window` echoes in flight. */
export async function loadRun(contender: Contender, sizes: WorkloadSizes): Promise<LoadRun> {
  const cpu = cpuWindow(contender.system.groups());
  const run = await pipelinedLoad(contender.load, (_c, seq) => ({ seq }), sizes.window, sizes.warmupMs, sizes.durationMs, cpu.hooks);
  const { p50Ms, p99Ms } = summarize(run.samples);
  const cpuUsPerRoundTrip = withTotal(cpu.used(), (run.messagesPerSecond * run.measuredMs) / 1000);
  say(`  ${contender.system.label} pipelined: ${run.messagesPerSecond} round trips/s, lost ${run.lost}; server CPU µs each ${JSON.stringify(cpuUsPerRoundTrip)}`);
  return { roundTripsPerSecond: run.messagesPerSecond, p50Ms, p99Ms, sent: run.sent, lost: run.lost, cpuUsPerRoundTrip };
}

/** One broadcast run of one system. */
export interface BroadcastRun {
  deliveriesPerSecond: number;
  broadcasts: number;
  lost: number;
  cpuUsPerDelivery: CpuPerUnit;
}

/** Broadcasts to every member of one room, `broadcastWindow` of them not yet delivered to all. */
export async function broadcastRun(contender: Contender, sizes: WorkloadSizes): Promise<BroadcastRun> {
  const cpu = cpuWindow(contender.system.groups());
  const run = await broadcastLoad(contender.members, sizes.broadcastWindow, sizes.warmupMs, sizes.durationMs, cpu.hooks);
  const cpuUsPerDelivery = withTotal(cpu.used(), run.deliveries);
  say(`  ${contender.system.label} broadcast: ${run.deliveriesPerSecond} deliveries/s, lost ${run.lost}; server CPU µs per delivery ${JSON.stringify(cpuUsPerDelivery)}`);
  return { deliveriesPerSecond: run.deliveriesPerSecond, broadcasts: run.broadcasts, lost: run.lost, cpuUsPerDelivery };
}

/** One series' create+join times in one round. */
export interface CreateJoinRun {
  p50Ms: number;
  p99Ms: number;
  n: number;
}

/**
 * `warmup + count` create+joins per series, one at a time, the series taking turns (the order
 * reversed every other turn); each after its series' `prepare`. Keyed by series.
 */
export async function createJoinRuns(contenders: readonly Contender[], warmup: number, count: number): Promise<Record<string, CreateJoinRun>> {
  const series = contenders.flatMap((c) => c.system.createJoins);
  const samples = series.map(() => [] as number[]);
  const order = series.map((_, s) => s);
  for (let i = 0; i < warmup + count; i++) {
    for (const s of i % 2 === 0 ? order : [...order].reverse()) {
      await series[s].prepare();
      const ms = await series[s].run();
      if (i >= warmup) samples[s].push(ms);
    }
  }
  // The next measure starts with every warm pool full and the last stops done.
  for (const s of series) await s.prepare();
  return Object.fromEntries(
    series.map((s, i) => {
      const { p50Ms, p99Ms, n } = summarize(samples[i]);
      say(`  ${s.label}: create+join p50 ${p50Ms} ms, p99 ${p99Ms} ms`);
      return [s.key, { p50Ms, p99Ms, n }];
    }),
  );
}

/** Memory the rooms of one system took. */
export interface MemoryRun {
  rooms: number;
  beforePssKb: number;
  afterPssKb: number;
  /** PSS growth per room, in KiB. */
  perRoomKb: number;
  /** USS growth per room, in KiB (pages only the system's processes hold). */
  ussPerRoomKb: number;
}

/**
 * PSS and USS of the system's room processes before and after `count` idle rooms, `settleMs`
 * after creating them; then the rooms are ended. Run first, on a system no client used yet: what
 * earlier traffic left to be freed would otherwise be measured as well (Colyseus's process
 * returning buffers after a load run shrank by more than 200 rooms take).
 */
export async function memoryRun(system: PeerSystem, count: number, settleMs: number): Promise<MemoryRun> {
  // Warm pools full, so that no process started meanwhile counts as a room's.
  for (const series of system.createJoins) await series.prepare();
  await system.beforeMemory();
  const before = sumMemory(system.roomPids());
  await system.createIdleRooms(count);
  await sleep(settleMs);
  await system.beforeMemory();
  const after = sumMemory(system.roomPids());
  const perRoomKb = round((after.pssKb - before.pssKb) / count, 1);
  const ussPerRoomKb = round((after.ussKb - before.ussKb) / count, 1);
  say(`  ${system.label}: ${count} idle rooms took ${after.pssKb - before.pssKb} KiB of PSS (${perRoomKb} KiB per room; USS ${ussPerRoomKb} KiB per room)`);
  await system.removeIdleRooms();
  return { rooms: count, beforePssKb: before.pssKb, afterPssKb: after.pssKb, perRoomKb, ussPerRoomKb };
}
