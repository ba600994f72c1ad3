/**
 * Proving a run left nothing running: the processes below a server are listed while it runs, and
 * after it ended each one must be gone (or its PID reused by an unrelated command line).
 */
import { alive, descendants } from "../../test/helpers/processes.js";
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
