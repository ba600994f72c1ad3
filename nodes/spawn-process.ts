/** Starting one instance process: never through a shell, in its own process group. */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { TaskConfig } from "../src/config/options.js";

/** The program of a shared host process (compiled next to this file's folder, in dist/). */
const SHARED_HOST_RUNNER = fileURLToPath(new URL("../src/service/shared-host-runner.js", import.meta.url));

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

/**
 * Forks a shared host process of a `module` task with `isolation: "shared"` (nodes/shared-host.ts),
 * which runs the task's module once for several instances: no `SERVMAN_INSTANCE`, since it has many.
 */
export function forkSharedHost(task: TaskConfig, cwd: string): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...inheritedEnv(), ...task.env, SERVMAN_TASK: task.name };
  return fork(SHARED_HOST_RUNNER, [task.module!], { cwd, env, stdio: ["ignore", "pipe", "pipe", "ipc"], detached: true, serialization: "json" });
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
