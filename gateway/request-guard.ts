/**
 * The last line behind the gateway's HTTP and upgrade handlers. They run for every request from
 * anyone, unauthenticated: an exception that escaped one would be an unhandled rejection, which
 * ends the process and every connection on it. Here it is logged, counted
 * (`servman_gateway_internal_errors_total{where}`), and answered 500, or the socket closed.
 */
import type { ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { Logger } from "pino";
import type { GatewayMetrics } from "./metrics.js";

const INTERNAL_BODY = JSON.stringify({ error: { code: "internal", message: "internal error" } });

export class RequestGuard {
  constructor(
    private readonly logger: Logger,
    private readonly metrics: GatewayMetrics,
  ) {}

  /** Runs an HTTP request's handler; whatever it throws or rejects with is answered 500. */
  http(res: ServerResponse, handle: () => Promise<void>): void {
    this.run("http", handle, () => {
      if (res.headersSent) return void res.destroy();
      res.writeHead(500, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(INTERNAL_BODY), connection: "close" });
      res.end(INTERNAL_BODY);
    });
  }

  /**
   * Runs an upgrade's handler. On an error the socket gets a 500 while nothing has been written to
   * it (`answered` false), and is destroyed otherwise.
   */
  upgrade(socket: Duplex, answered: () => boolean, handle: () => void | Promise<void>): void {
    this.run("upgrade", handle, () => {
      if (answered() || !socket.writable) return void socket.destroy();
      socket.end(
        `HTTP/1.1 500 Internal Server Error\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(INTERNAL_BODY)}\r\nconnection: close\r\n\r\n${INTERNAL_BODY}`,
      );
    });
  }

  private run(where: "http" | "upgrade", handle: () => void | Promise<void>, answer: () => void): void {
    const fail = (err: unknown) => {
      this.report(where, err);
      try {
        answer();
      } catch (answerErr) {
        this.logger.error({ err: answerErr, where }, "could not answer after an internal error");
      }
    };
    try {
      const done = handle();
      if (done) done.catch(fail);
    } catch (err) {
      fail(err);
    }
  }

  private report(where: string, err: unknown): void {
    this.metrics.internalErrors.inc({ where });
    this.logger.error({ err, where }, "internal error at the gateway's edge");
  }
}
