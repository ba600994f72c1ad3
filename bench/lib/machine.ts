/** What the numbers were measured on: a benchmark result means little without it. */
import { cpus, loadavg, totalmem } from "node:os";
import { openFileLimit } from "./env.js";

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  totalMemoryMb: number;
  node: string;
  openFileLimit: number;
  /** 1-minute load average when the benchmark started and ended: others' work skews results. */
  loadAtStart: number;
  loadAtEnd: number;
}

/** The machine as it is now (call `finish` at the end to record the final load). */
export function machineInfo(): MachineInfo {
  const list = cpus();
  return {
    cpus: list.length,
    cpuModel: list[0]?.model ?? "unknown",
    totalMemoryMb: Math.round(totalmem() / 2 ** 20),
    node: process.version,
    openFileLimit: openFileLimit(),
    loadAtStart: Number(loadavg()[0].toFixed(2)),
    loadAtEnd: 0,
  };
}

/** Records the load average at the end of a run. */
export function finishMachineInfo(info: MachineInfo): MachineInfo {
  return { ...info, loadAtEnd: Number(loadavg()[0].toFixed(2)) };
}
