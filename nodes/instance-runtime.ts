/**
 * The process side of one instance, as `Instance` sees it: where its messages go, how it is
 * ended, which pid runs it, and who watches its memory. Two kinds: a process of its own
 * ({@link processRuntime}), or a place in a shared host process (nodes/shared-host.ts). Either
 * reports the end through the `onClose` it was started with (instance-process.ts).
 */
import type { ChildProcess } from "node:child_process";
import type { ChildChannel } from "./child-channel.js";
import type { InstanceHealth } from "./instance-health.js";
import { killProcessGroup } from "./spawn-process.js";

export interface InstanceRuntime {
  /** The process that runs it (its shared host's, for a shared instance). */
  readonly pid: number | undefined;
  /** Its task-protocol messages, as JSON text. */
  readonly channel: ChildChannel;
  /**
   * Ends it now: SIGKILLs its own process group, or drops it from its shared host (which kills
   * the host when it does not confirm: its event loop is blocked). Its end follows as a `close`.
   */
  kill(): void;
  /** Lets `health` see its memory: sampled for it alone, or its host's, sampled once per host. */
  watchMemory(health: InstanceHealth): void;
}

/** An instance in a process of its own. */
export function processRuntime(child: ChildProcess, channel: ChildChannel): InstanceRuntime {
  const runtime: InstanceRuntime = {
    get pid() {
      return child.pid;
    },
    channel,
    kill: () => killProcessGroup(child),
    watchMemory: (health) => health.watchMemory(runtime),
  };
  return runtime;
}
