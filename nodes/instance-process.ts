/**
 * Starting an instance's process, for a launch or a restart: a warm one from its task's pool, or
 * a new one; its channel (Node IPC or NDJSON over stdio), its output captured, its end reported,
 * and `start` sent (the first message a service gets, docs/task-protocol.md#lifecycle). An
 * instance of a task with `isolation: "shared"` gets a place in a shared host instead.
 */
import type { Logger } from "pino";
import type { TaskConfig } from "../src/config/options.js";
import type { NodeToService } from "../src/protocol/task-messages.js";
import { ipcChannel, lineChannel } from "./child-channel.js";
import type { InstanceHost } from "./instance-host.js";
import type { InstanceOutput } from "./instance-output.js";
import { processRuntime, type InstanceRuntime } from "./instance-runtime.js";
import { spawnInstanceProcess } from "./spawn-process.js";

/** What a process is started for, and where what it says goes. */
export interface InstanceProcessOptions {
  id: string;
  task: TaskConfig;
  args: Record<string, unknown>;
  host: Pick<InstanceHost<unknown>, "takeWarm" | "placeShared" | "baseDir">;
  output: InstanceOutput;
  logger: Logger;
  /** One message from the service (not yet checked). */
  onMessage(value: unknown): void;
  /** The process exited and its output is drained. */
  onClose(code: number | null, signal: NodeJS.Signals | null): void;
}

/** Adopts a warm process or starts one (or places it in a shared host), wires its channel and logs, and sends it `start`. */
export function startInstanceProcess(o: InstanceProcessOptions): InstanceRuntime {
  const { task, output } = o;
  if (task.isolation === "shared") return o.host.placeShared(task, { id: o.id, args: o.args, output, onMessage: (value) => o.onMessage(value), onClose: (code, signal) => o.onClose(code, signal) });
  const child = o.host.takeWarm(task) ?? spawnInstanceProcess(task, o.id, o.host.baseDir);
  const handlers = {
    onMessage: (value: unknown) => o.onMessage(value),
    onGarbage: (problem: string) => output.reportInvalid(problem),
  };
  const channel = task.kind === "module" ? ipcChannel(child, handlers) : lineChannel(child, handlers);
  output.capture(child.stderr, "stderr");
  if (task.kind === "module") output.capture(child.stdout, "stdout");
  child.on("error", (err) => {
    output.line("spawn", err.message);
    o.logger.error({ err }, "instance process error");
  });
  child.on("close", (code, signal) => o.onClose(code, signal));
  // Sent straight to the channel: while restarting, everything else waits in the instance's `held`.
  channel.send(JSON.stringify({ type: "start", instance: o.id, task: task.name, args: o.args } satisfies NodeToService));
  return processRuntime(child, channel);
}
