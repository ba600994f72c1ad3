/**
 * From the rounds of bench/peer.ts to figures: each figure is the median of its rounds, and each
 * Servman figure is set against the same figure for Colyseus, with the targets of issue #16.
 */
import { metric, soloMetric, type Metric, type RatioTarget } from "../lib/results.js";
import { median } from "../lib/stats.js";
import type { BroadcastRun, CpuPerUnit, CreateJoinRun, EchoRun, LoadRun, MemoryRun } from "./workloads.js";

/** Every round of one system. */
export interface SystemRounds {
  echo: EchoRun[];
  load: LoadRun[];
  broadcast: BroadcastRun[];
}

/** The median figures of one system. */
export interface SystemSummary {
  echoP50Ms: number;
  echoP99Ms: number;
  /** Server CPU µs per sequential round trip, per group and `total`. */
  echoCpuUs: CpuPerUnit;
  roundTripsPerSecond: number;
  loadP50Ms: number;
  loadP99Ms: number;
  loadCpuUs: CpuPerUnit;
  deliveriesPerSecond: number;
  deliveryCpuUs: CpuPerUnit;
  lost: number;
  sent: number;
  broadcastsLost: number;
}

function medianCpu(runs: readonly CpuPerUnit[]): CpuPerUnit {
  const groups = Object.keys(runs[0] ?? {});
  return Object.fromEntries(groups.map((g) => [g, median(runs.map((r) => r[g] ?? 0))]));
}

/** Medians over the rounds of one system. */
export function summarizeSystem(rounds: SystemRounds): SystemSummary {
  return {
    echoP50Ms: median(rounds.echo.map((r) => r.p50Ms)),
    echoP99Ms: median(rounds.echo.map((r) => r.p99Ms)),
    echoCpuUs: medianCpu(rounds.echo.map((r) => r.cpuUsPerRoundTrip)),
    roundTripsPerSecond: median(rounds.load.map((r) => r.roundTripsPerSecond)),
    loadP50Ms: median(rounds.load.map((r) => r.p50Ms)),
    loadP99Ms: median(rounds.load.map((r) => r.p99Ms)),
    loadCpuUs: medianCpu(rounds.load.map((r) => r.cpuUsPerRoundTrip)),
    deliveriesPerSecond: median(rounds.broadcast.map((r) => r.deliveriesPerSecond)),
    deliveryCpuUs: medianCpu(rounds.broadcast.map((r) => r.cpuUsPerDelivery)),
    lost: rounds.load.reduce((sum, r) => sum + r.lost, 0),
    sent: rounds.load.reduce((sum, r) => sum + r.sent, 0),
    broadcastsLost: rounds.broadcast.reduce((sum, r) => sum + r.lost, 0),
  };
}

/** Medians over the rounds of one create+join series. */
export function summarizeCreateJoin(runs: readonly CreateJoinRun[]): { p50Ms: number; p99Ms: number } {
  return { p50Ms: median(runs.map((r) => r.p50Ms)), p99Ms: median(runs.map((r) => r.p99Ms)) };
}

/** Targets on one comparison (servman / colyseus), by figure. */
export interface ComparisonTargets {
  echoP50?: RatioTarget;
  echoP99?: RatioTarget;
  echoCpu?: RatioTarget;
  deliveryCpu?: RatioTarget;
  memory?: RatioTarget;
}

/** Sizes that go into the labels. */
export interface LabelSizes {
  clients: number;
  rooms: number;
  window: number;
  members: number;
}

/**
 * The rows comparing one Servman variant with one Colyseus variant. `key` prefixes the metric
 * keys, `label` the labels ("" for the main comparison).
 */
export function comparisonMetrics(
  key: string,
  label: string,
  s: SystemSummary,
  c: SystemSummary,
  memory: { servman?: MemoryRun; colyseus?: MemoryRun },
  sizes: LabelSizes,
  targets: ComparisonTargets,
): Metric[] {
  const k = (name: string) => (key ? `${key}.${name}` : name);
  return [
    metric(k("echoP50"), `${label}echo round trip p50, 1 client, sequential`, "ms", "lower", s.echoP50Ms, c.echoP50Ms, targets.echoP50),
    metric(k("echoP99"), `${label}echo round trip p99, 1 client, sequential`, "ms", "lower", s.echoP99Ms, c.echoP99Ms, targets.echoP99),
    metric(k("echoCpu"), `${label}server CPU per echo round trip, sequential`, "µs", "lower", s.echoCpuUs.total ?? null, c.echoCpuUs.total ?? null, targets.echoCpu),
    metric(k("roundTrips"), `${label}round trips/s, ${sizes.clients} clients in ${sizes.rooms} rooms, ${sizes.window} in flight each`, "/s", "higher", s.roundTripsPerSecond, c.roundTripsPerSecond),
    metric(k("loadCpu"), `${label}server CPU per round trip, pipelined`, "µs", "lower", s.loadCpuUs.total ?? null, c.loadCpuUs.total ?? null),
    metric(k("deliveries"), `${label}broadcast deliveries/s, 1 room x ${sizes.members} clients`, "/s", "higher", s.deliveriesPerSecond, c.deliveriesPerSecond),
    metric(k("deliveryCpu"), `${label}server CPU per broadcast delivery`, "µs", "lower", s.deliveryCpuUs.total ?? null, c.deliveryCpuUs.total ?? null, targets.deliveryCpu),
    metric(
      k("memoryPerRoom"),
      `${label}memory per idle room (PSS growth over ${memory.servman?.rooms ?? "-"} / ${memory.colyseus?.rooms ?? "-"} rooms)`,
      "KiB",
      "lower",
      memory.servman?.perRoomKb ?? null,
      memory.colyseus?.perRoomKb ?? null,
      targets.memory,
    ),
  ];
}

/** Servman-only rows: where its CPU goes, per process group (Colyseus is one process). */
export function cpuSplitMetrics(key: string, what: string, cpu: CpuPerUnit): Metric[] {
  return Object.entries(cpu)
    .filter(([group]) => group !== "total" && group !== "client")
    .map(([group, us]) => soloMetric(`${key}.${group}`, `servman ${what}: ${group}`, "µs", "lower", us));
}
