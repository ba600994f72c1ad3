/**
 * Benchmark sizes come from environment variables so a run can be scaled down (development on a
 * shared 2-core machine) or up without editing code; limits of this machine cap them.
 */
import { readFileSync } from "node:fs";

/**
 * Reads a positive integer from `$name`, or returns `fallback` when it is unset or empty.
 * Throws on anything else: a typo must not silently run the default size.
 */
export function envInt(name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`$${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  return n;
}

/**
 * The soft limit on open files of this process (what `ulimit -n` shows). Children inherit it, so
 * it bounds the sockets and pipes any one benchmark process can hold.
 */
export function openFileLimit(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.trim().split(/\s+/)[3];
    if (soft === "unlimited") return Number.MAX_SAFE_INTEGER;
    if (soft !== undefined && Number.isInteger(Number(soft))) return Number(soft);
  } catch {
    // Not Linux: fall through to a conservative guess.
  }
  return 1024;
}

/** A size asked for, and the size actually used once capped by a machine limit. */
export interface CappedSize {
  asked: number;
  used: number;
  /** Why `used` is smaller than `asked`, or null. */
  cappedBy: string | null;
}

/** Caps `asked` at `limit`, remembering why. */
export function capSize(asked: number, limit: number, why: string): CappedSize {
  return asked <= limit ? { asked, used: asked, cappedBy: null } : { asked, used: Math.max(1, Math.floor(limit)), cappedBy: why };
}
