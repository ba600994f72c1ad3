/**
 * The redis-server processes a topology helper started, ended by PID. `stop()` of each helper is
 * the normal path; this is the last resort when the test file ends without it: on `exit` (like
 * test/helpers/redis-server.ts) and also on SIGINT/SIGTERM/SIGHUP, where Node would otherwise die
 * without running `exit` handlers; their temporary folders go too. A SIGKILL of the test process cannot be caught: the servers
 * are spawned attached (not detached), but would survive it, reparented to init.
 */
import type { ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";

const owned = new Set<ChildProcess>();
const folders = new Set<string>();
let installed = false;

function killAll(): void {
  for (const child of owned) {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  owned.clear();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  folders.clear();
}

function onSignal(signal: NodeJS.Signals): void {
  killAll();
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.off(s, onSignal);
  // Die of the same signal, as the process would have without this handler.
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.once("exit", killAll);
  for (const s of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.once(s, onSignal);
}

/** Remembers `child` so it is SIGKILLed if the test process ends before the helper's `stop()`. */
export function own(child: ChildProcess): void {
  install();
  owned.add(child);
  child.once("exit", () => owned.delete(child));
}

/** Remembers a temporary folder, removed with the processes if `stop()` never runs. */
export function ownFolder(folder: string): void {
  install();
  folders.add(folder);
}

/** Removes `folder` now (the normal path, from `stop()`). */
export function removeFolder(folder: string): void {
  rmSync(folder, { recursive: true, force: true });
  folders.delete(folder);
}

/** SIGKILLs `child` (if still running) and resolves once it has exited. */
export async function killNow(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGKILL");
  await exited;
}
