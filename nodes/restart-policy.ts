/**
 * Supervisor mode: whether an instance that ended by itself is started again, and after how long.
 * `restart: "on-failure"` restarts crashes, `"always"` also clean exits; backoff doubles from
 * 100 ms up to 5 s; more than `maxRestarts` restarts within a minute is a crash loop, and the
 * instance then ends for good (`crashed`).
 */
import type { TaskConfig } from "../src/config/options.js";

/** Restarts counted for the crash-loop limit are those within this window. */
export const RESTART_WINDOW_MS = 60_000;
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5_000;

export class RestartPolicy {
  /** When the recent restarts happened (ms since epoch), oldest first. */
  private readonly recent: number[] = [];
  /** Restarts so far, for the clients' `restarting` events. */
  attempts = 0;

  constructor(private readonly task: Pick<TaskConfig, "restart" | "maxRestarts">) {}

  /** The delay before restarting after an end of this kind, or null when the instance must end. */
  next(reason: "exited" | "crashed", now = Date.now()): number | null {
    const { restart, maxRestarts } = this.task;
    if (restart === "never" || (restart === "on-failure" && reason !== "crashed")) return null;
    while (this.recent.length > 0 && now - this.recent[0] > RESTART_WINDOW_MS) this.recent.shift();
    if (this.recent.length >= maxRestarts) return null;
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** this.recent.length);
    this.recent.push(now);
    this.attempts++;
    return delay;
  }
}
