/**
 * Proving a run left nothing running: the processes below a server are listed while it runs, and
 * after it ended each one must be gone (or its PID reused by an unrelated command line).
 */
import { alive, descendants } from "../../test/helpers/processes.js";
import type { BenchContext } from "./bench-runner.js";
import { cmdlineOf } from "./proc-memory.js";

/** A process seen below a server. */
export interface SeenProcess {
  pid: number;
  cmd: string;
}

/** Every live descendant of `root` now. */
export function processesBelow(root: number): SeenProcess[] {
  return descendants(root).map((p) => ({ pid: p.pid, cmd: p.cmd }));
}

/** The processes of `seen` (and `extra`) still running with the same command line. */
export function survivors(seen: readonly SeenProcess[]): SeenProcess[] {
  return seen.filter((p) => alive(p.pid) && cmdlineOf(p.pid) === p.cmd);
}

/** Something a benchmark started and stops: a floor script or a `servman` process. */
export interface Stoppable {
  pid: number;
  stop(): Promise<number | null>;
}

/**
 * Stops `proc` and records the check `label`: nothing that ran below it is left and, with
 * `cleanExit`, it exited with code 0.
 */
export async function stopAndCheck(ctx: BenchContext, label: string, proc: Stoppable, cleanExit: boolean): Promise<void> {
  const below = processesBelow(proc.pid);
  const code = await proc.stop();
  const left = survivors(below);
  ctx.check(label, left.length === 0 && (!cleanExit || code === 0), `${cleanExit ? `exit code ${code}, ` : ""}${left.length} of ${below.length} still running`);
}
