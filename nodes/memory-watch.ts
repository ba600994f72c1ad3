/** Reading a process's resident memory, for maxMemoryMb and post-mortems (Linux /proc). */
import { readFile } from "node:fs/promises";

/** Resident set size of `pid` in KiB, or null once it is gone (or off Linux). */
export async function residentKb(pid: number): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}
