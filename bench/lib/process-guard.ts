/**
 * Every process a benchmark starts is registered here, so that whatever happens (an exception, a
 * timeout, Ctrl-C, run-all ending us) each one is ended by its PID. Nothing is ever ended by name.
 */
import type { ChildProcess } from "node:child_process";
import { alive } from "../../test/helpers/processes.js";

const tracked = new Map<number, string>();
let installed = false;

function killAll(): void {
  for (const pid of tracked.keys()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  tracked.clear();
}

function install(): void {
  if (installed) return;
  installed = true;
  // "exit" runs synchronously on any normal end, including process.exit().
  process.once("exit", killAll);
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      killAll();
      process.exit(130);
    });
  }
}

/** Registers `child` to be killed by PID if this process ends first; unregisters it once it exits. */
export function track(child: ChildProcess, what: string): void {
  install();
  const pid = child.pid;
  if (pid === undefined) return;
  tracked.set(pid, what);
  child.once("exit", () => tracked.delete(pid));
}

/** True while any tracked process is still running (for a final leak check). */
export function stillTracked(): { pid: number; what: string }[] {
  return [...tracked].filter(([pid]) => alive(pid)).map(([pid, what]) => ({ pid, what }));
}

/**
 * Sends `signal` to `child` by PID, waits up to `deadlineMs` for it to exit, then SIGKILLs it.
 * Resolves with the exit code (null when killed by a signal).
 */
export async function endProcess(child: ChildProcess, signal: NodeJS.Signals = "SIGTERM", deadlineMs = 10_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  try {
    process.kill(child.pid!, signal);
  } catch {
    return child.exitCode;
  }
  let timer: NodeJS.Timeout | undefined;
  const forced = new Promise<"deadline">((resolve) => (timer = setTimeout(() => resolve("deadline"), deadlineMs)));
  const first = await Promise.race([exited, forced]);
  clearTimeout(timer);
  if (first !== "deadline") return first;
  try {
    process.kill(child.pid!, "SIGKILL");
  } catch {
    // Exited just now.
  }
  return exited;
}
