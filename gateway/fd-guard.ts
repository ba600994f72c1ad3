/**
 * Refuses new connections before the gateway's open-file limit is hit, rather than letting
 * accept() fail in bulk once it is, and logs the fix (at most once a minute).
 */
import type { Logger } from "pino";
import { FD_RESERVE, fdLimitMessage, openFileLimit, openFiles } from "../src/fd-limit.js";

/** How often, at most, the open files are counted near the limit. */
const FD_RECOUNT_MS = 250;
const WARN_EVERY_MS = 60_000;

export class FdGuard {
  private readonly limit = openFileLimit();
  private lastWarning = 0;
  /** The last real count of open files, when it was read, and the connections open then. */
  private count = { at: 0, files: 0, connections: 0 };

  constructor(private readonly logger: Logger) {}

  /**
   * True when one more connection would bring the process near its limit. Connections are a
   * cheap lower bound on open files; past half the limit the real count is read (handshakes,
   * admin sockets and, under `servman start`, the node's pipes count too), at most every 250 ms:
   * reading /proc/self/fd costs milliseconds with thousands open. Connections opened since the
   * last read count as one more file each. `reserve`: files kept free (default 64).
   */
  full(connections: number, reserve = FD_RESERVE): boolean {
    if (this.limit === null || connections < this.limit / 2) return false;
    const now = Date.now();
    if (now - this.count.at >= FD_RECOUNT_MS) this.count = { at: now, files: openFiles() ?? connections, connections };
    const estimate = this.count.files + Math.max(0, connections - this.count.connections);
    return estimate + reserve >= this.limit;
  }

  /** Logs the limit and its fix, once a minute at most. */
  warn(connections: number): void {
    const now = Date.now();
    if (now - this.lastWarning < WARN_EVERY_MS) return;
    this.lastWarning = now;
    this.logger.error({ limit: this.limit, connections }, fdLimitMessage(this.limit ?? 0, "new connections"));
  }
}
