/**
 * CPU time of processes from /proc/<pid>/stat, to say where the time of a run went (gateway and
 * node, instance processes, redis-server, the load generator) rather than only how long it took.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** User + system CPU time `pid` has used so far, in ms (0 when it is gone). */
export function cpuTimeMs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the parenthesised name: state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks();
  } catch {
    return 0;
  }
}

/** Named groups of processes whose CPU time is compared between two moments. */
export type CpuGroups = Record<string, readonly number[]>;

/** CPU ms per group at one moment. */
export type CpuSnapshot = Record<string, number>;

/** Sums the CPU time of each group's processes now. */
export function cpuSnapshot(groups: CpuGroups): CpuSnapshot {
  const out: CpuSnapshot = {};
  for (const [name, pids] of Object.entries(groups)) out[name] = pids.reduce((sum, pid) => sum + cpuTimeMs(pid), 0);
  return out;
}

/** CPU ms used by each group between two snapshots. */
export function cpuDelta(before: CpuSnapshot, after: CpuSnapshot): CpuSnapshot {
  const out: CpuSnapshot = {};
  for (const name of Object.keys(after)) out[name] = Math.round((after[name] - (before[name] ?? 0)) * 10) / 10;
  return out;
}

/** CPU µs per unit of work, per group, from the CPU ms each group used for `count` units (0.1 µs steps). */
export function perUnit(cpuMs: CpuSnapshot, count: number): Record<string, number> {
  return Object.fromEntries(Object.entries(cpuMs).map(([k, ms]) => [k, count > 0 ? Math.round((ms * 1000 * 10) / count) / 10 : 0]));
}
