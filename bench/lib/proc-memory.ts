/**
 * Memory of processes read from /proc: RSS counts shared pages (the Node binary, libraries) once
 * per process, so for many similar children PSS (shared pages divided among their sharers) and
 * USS (pages only this process has) are the honest per-process figures.
 */
import { readFileSync } from "node:fs";

/** One process's memory, in KiB. Fields are 0 when the process is gone or /proc hides them. */
export interface ProcessMemory {
  pid: number;
  rssKb: number;
  /** Peak RSS (VmHWM). */
  hwmKb: number;
  /** Proportional set size: shared pages divided among the processes sharing them. */
  pssKb: number;
  /** Unique set size: private clean + private dirty pages. */
  ussKb: number;
}

function field(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
  return match ? Number(match[1]) : 0;
}

/** VmRSS of `pid` in KiB, or 0 when it is gone. */
export function rssKb(pid: number): number {
  try {
    return field(readFileSync(`/proc/${pid}/status`, "utf8"), "VmRSS");
  } catch {
    return 0;
  }
}

/** RSS, peak RSS, PSS and USS of `pid` (smaps_rollup needs Linux >= 4.14). */
export function memoryOf(pid: number): ProcessMemory {
  const out: ProcessMemory = { pid, rssKb: 0, hwmKb: 0, pssKb: 0, ussKb: 0 };
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    out.rssKb = field(status, "VmRSS");
    out.hwmKb = field(status, "VmHWM");
  } catch {
    return out;
  }
  try {
    const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, "utf8");
    out.pssKb = field(rollup, "Pss");
    out.ussKb = field(rollup, "Private_Clean") + field(rollup, "Private_Dirty");
  } catch {
    // Gone in between, or smaps_rollup unavailable: RSS is still reported.
  }
  return out;
}

/** Totals of RSS / PSS / USS over `pids`, and how many could be read. */
export interface MemoryTotals {
  count: number;
  rssKb: number;
  pssKb: number;
  ussKb: number;
}

/** Sums the memory of `pids` (processes that vanished count as not read). */
export function sumMemory(pids: readonly number[]): MemoryTotals {
  const totals: MemoryTotals = { count: 0, rssKb: 0, pssKb: 0, ussKb: 0 };
  for (const pid of pids) {
    const m = memoryOf(pid);
    if (m.rssKb === 0) continue;
    totals.count++;
    totals.rssKb += m.rssKb;
    totals.pssKb += m.pssKb;
    totals.ussKb += m.ussKb;
  }
  return totals;
}

/** The command line of `pid`, or "" when it is gone. */
export function cmdlineOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ").trim();
  } catch {
    return "";
  }
}
