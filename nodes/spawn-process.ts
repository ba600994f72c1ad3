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
 */
export function spawnInstanceProcess(task: TaskConfig, id: string, cwd: string): ChildProcess {
  const env = { ...inheritedEnv(), ...task.env, SERVMAN_INSTANCE: id, SERVMAN_TASK: task.name };
  return task.kind === "module"
    ? fork(task.module!, [], { cwd, env, stdio: ["ignore", "pipe", "pipe", "ipc"], detached: true, serialization: "json" })
    : spawn(task.command![0]!, task.command!.slice(1), { cwd, env, stdio: ["pipe", "pipe", "pipe"], detached: true });
}
