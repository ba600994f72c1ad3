/** Starting one instance process: never through a shell, in its own process group. */
import { fork, spawn, type ChildProcess } from "node:child_process";
import type { TaskConfig } from "../src/config/options.js";

/**
 * The node's environment without Servman's own settings (Redis URL and the like): an instance
 * gets what its task's `env` gives it, not the node's credentials.
 */
function inheritedEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) if (!key.startsWith("SERVMAN_")) env[key] = value;
  return env;
}

/**
 * Forks a `module` task (Node IPC) or spawns a `command` task (stdio pipes) for instance `id`,
 * in `cwd`. Detached: the instance leads its own process group, so stopping it ends its whole tree.
 * `id` is null for a warm process, started before its instance exists.
 */
export function spawnInstanceProcess(task: TaskConfig, id: string | null, cwd: string): ChildProcess {
  // A task with a warm pool never gets SERVMAN_INSTANCE, not even in a process started cold (an
  // empty pool, a restart): its code cannot come to rely on it. The id arrives in `start`.
  const env: NodeJS.ProcessEnv = { ...inheritedEnv(), ...task.env, SERVMAN_INSTANCE: id ?? undefined, SERVMAN_TASK: task.name };
  if (id === null || task.warm > 0) delete env.SERVMAN_INSTANCE;
  return task.kind === "module"
    ? fork(task.module!, [], { cwd, env, stdio: ["ignore", "pipe", "pipe", "ipc"], detached: true, serialization: "json" })
    : spawn(task.command![0], task.command!.slice(1), { cwd, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
}

/** SIGKILLs the process group `child` leads (its whole tree), or the process alone if that fails. */
export function killProcessGroup(child: ChildProcess): void {
  const pid = child.pid;
  if (pid === undefined) return;
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    child.kill("SIGKILL");
  }
}
