/**
 * What a node counts of the input it could not use (its record shows them: `servman nodes
 * --json`, `GET /v1/nodes`), and the guard its entry points run behind: an exception there is
 * logged with its stack and counted, never fatal (docs/security.md#hostile-input).
 */
import type { Logger } from "pino";
import type { EdgeFault } from "../src/edge-guard.js";

export class NodeCounts {
  /** Invalid lines and messages dropped from services, since the node started. */
  invalidOutput = 0;
  /** Exceptions caught at an entry point (a Redis message, a service message). */
  internalErrors = 0;
  /** Messages on the node's Redis channels dropped for not having the expected shape. */
  badBusMessages = 0;
  /** Client messages dropped because their instance's process was not reading its input. */
  droppedForBackpressure = 0;

  constructor(private readonly logger: Logger) {}

  /** An exception that escaped a handler at an entry point. */
  readonly fault: EdgeFault = (err, where) => {
    this.internalErrors++;
    this.logger.error({ err, where }, "exception at an entry point; the node goes on");
  };

  /** A message on one of the node's channels that does not have the shape of one. */
  badBus(problem: string): void {
    this.badBusMessages++;
    this.logger.warn({ problem }, "bad bus message dropped");
  }
}
