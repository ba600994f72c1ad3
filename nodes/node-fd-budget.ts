/**
 * A node's open files: each instance process takes about four (stdio pipes, the IPC channel).
 * Launches and warm processes are refused before the limit is hit, with the fix logged at most
 * once a minute; a capacity the limit cannot hold is reported at start.
 */
import type { Logger } from "pino";
import { FD_RESERVE, fdLimitMessage, openFileLimit, openFiles } from "../src/fd-limit.js";

/** Files one instance process takes in its node: stdio pipes and the IPC channel. */
const FD_PER_INSTANCE = 4;
const WARN_EVERY_MS = 60_000;

export class NodeFdBudget {
  /** The process's open-file limit, null when unknown. */
  readonly limit = openFileLimit();
  private lastWarning = 0;

  constructor(private readonly logger: Logger) {}

  /** Warns when `processes` (capacity plus warm ones) would not fit under the limit. */
  checkCapacity(capacity: number, processes: number): void {
    const needed = processes * FD_PER_INSTANCE + FD_RESERVE;
    if (this.limit !== null && needed > this.limit) {
      this.logger.warn({ capacity, openFileLimit: this.limit, needed }, fdLimitMessage(this.limit, "launches past about " + Math.floor((this.limit - FD_RESERVE) / FD_PER_INSTANCE) + " instances"));
    }
  }

  /** True when starting another process would bring the node near its limit. */
  near(): boolean {
    if (this.limit === null) return false;
    const open = openFiles();
    return open !== null && open + FD_PER_INSTANCE + FD_RESERVE >= this.limit;
  }

  /** {@link near}, logging the limit and its fix (once a minute at most) when so. */
  refusesLaunch(): boolean {
    if (!this.near()) return false;
    if (Date.now() - this.lastWarning >= WARN_EVERY_MS) {
      this.lastWarning = Date.now();
      this.logger.error({ limit: this.limit }, fdLimitMessage(this.limit ?? 0, "launches"));
    }
    return true;
  }
}
