/** Finding this test process's own descendants, to prove nothing was left running. */
import { readFileSync, readdirSync } from "node:fs";

interface ProcInfo {
  pid: number;
  ppid: number;
  cmd: string;
}

function snapshot(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      // Field 4 (ppid) follows the parenthesised command name, which may contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const cmd = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ").trim();
      out.push({ pid: Number(entry), ppid, cmd });
    } catch {
      // The process ended while we looked.
    }
  }
  return out;
}

/** Every live descendant of `root` (default: this process), except those whose pid is in `except`. */
export function descendants(root = process.pid, except: readonly number[] = []): ProcInfo[] {
  const all = snapshot().filter((p) => !except.includes(p.pid));
  const found: ProcInfo[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const p of all) {
      if (p.ppid === parent && !except.includes(p.pid)) {
        found.push(p);
        queue.push(p.pid);
      }
    }
  }
  return found;
}

/** True while process `pid` exists (zombies count as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** Waits until `check` is true, polling; fails with `what` after `ms`. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}
