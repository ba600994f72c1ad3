/**
 * What an instance needs from its node (`InstanceHost`), how an instance ended, and the phases
 * of its life: the contract between `Instance` and `ServmanNode`.
 */
import type { ChildProcess } from "node:child_process";
import type { TaskConfig } from "../src/config/options.js";
import type { EdgeFault } from "../src/edge-guard.js";
import type { Keys } from "../src/keys.js";
import type { ClosedReason } from "../src/protocol/client-messages.js";
import type { InstanceRuntime } from "./instance-runtime.js";
import type { SharedInstance } from "./shared-host.js";

/** What an instance (`I`: the `Instance` class, kept out of this file's imports) needs from its node. */
export interface InstanceHost<I> {
  readonly keys: Keys;
  readonly baseDir: string;
  readonly shutdownDeadlineMs: number;
  /** Publishes JSON text on a channel (fire and forget; order per channel is kept). */
  publish(channel: string, payload: string): void;
  /** Publishes and resolves with how many subscribers received it (same order as `publish`). */
  publishCounted(channel: string, payload: string): Promise<number>;
  /** Resolves once every publish issued before it has been answered. */
  settled(): Promise<void>;
  /** Counts one piece of invalid output from a service (node metrics). */
  countInvalid(): void;
  /** Reports an exception caught at an entry point (logged and counted by the node). */
  readonly fault: EdgeFault;
  /** Reports a message on the instance channel that does not have the shape of one. */
  badBus(problem: string): void;
  /** Counts client messages dropped because the process was not reading its input (node metrics). */
  countDroppedForBackpressure(count: number): void;
  /** Keeps one log line of the instance (for `servman logs`). */
  log(instance: I, source: string, text: string): void;
  /** Records a state change in the registry (shown by `servman ls`). */
  setState(instance: I, state: "ready" | "restarting" | "stopping"): void;
  /** Removes the ended instance from the registry; clients are told only after it resolves. */
  retire(instance: I, end: InstanceEnd): Promise<void>;
  /** A process of `task` already started and waiting for `start` (its warm pool), if any. */
  takeWarm(task: TaskConfig): ChildProcess | undefined;
  /** Places an instance of a task with `isolation: "shared"` in one of its host processes (nodes/shared-hosts.ts). */
  placeShared(task: TaskConfig, instance: SharedInstance): InstanceRuntime;
}

/** How an instance ended. */
export interface InstanceEnd {
  reason: Exclude<ClosedReason, "kicked" | "lost">;
  code: number | null;
  signal: NodeJS.Signals | null;
}

export type InstancePhase = "launching" | "ready" | "restarting" | "stopping" | "ended";
