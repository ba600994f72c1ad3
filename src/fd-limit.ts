/**
 * The process's open-file limit, so gateways and nodes can refuse work with a clear message (and
 * the fix) before the limit is hit, rather than failing in bulk once it is (the original's
 * "connections dropping en masse").
 */
import { readFileSync, readdirSync } from "node:fs";

/** The soft limit on open files, or null where it cannot be read (not Linux). */
export function openFileLimit(): number | null {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === undefined || soft === "unlimited" ? null : Number(soft);
  } catch {
    return null;
  }
}

/** Files this process has open now, or null where that cannot be read. */
export function openFiles(): number | null {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return null;
  }
}

/** Files kept free for Redis connections, logs and the like. */
export const FD_RESERVE = 64;

/** The message for work refused near the limit. */
export function fdLimitMessage(limit: number, what: string): string {
  return `this process is near its open-file limit (${limit}) and refuses ${what}; raise it, e.g. \`ulimit -n 65536\` before starting, or LimitNOFILE= in a systemd unit, or ulimits: nofile in docker compose`;
}
