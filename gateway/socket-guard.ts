/**
 * Every TCP socket a gateway accepts, counted from accept until it closes, per client address and
 * in total (docs/security.md#http-and-sockets). A socket that is still sending its request head,
 * an idle keep-alive socket and a WebSocket connection each hold a file and count alike against
 * `gateway.limits.maxConnectionsPerIp` and the open-file guard; the server's timeouts bound how
 * long a socket may take to send its request head.
 */
import type { Socket } from "node:net";
import type { Logger } from "pino";
import type { GatewayLimits } from "../src/config/options.js";
import { ServmanError } from "../src/errors.js";
import { FD_RESERVE } from "../src/fd-limit.js";
import type { FdGuard } from "./fd-guard.js";
import type { GatewayMetrics } from "./metrics.js";

/** Extra time a request gets, after its head, for its body (admin bodies are at most 1 MiB). */
const BODY_TIMEOUT_MS = 30_000;
/** Refusals at accept are logged at most this often (with how many there were). */
const LOG_EVERY_MS = 1_000;

/**
 * Options for Node's HTTP(S) server. Node checks `headersTimeout` and `requestTimeout` only every
 * `connectionsCheckingInterval` (30 s by default), so the interval is a fraction of the timeout;
 * the check visits only sockets with a request in progress. A TLS handshake is bounded alike.
 */
export function serverTimeouts(limits: Pick<GatewayLimits, "headersTimeoutMs">): {
  headersTimeout: number;
  requestTimeout: number;
  connectionsCheckingInterval: number;
  handshakeTimeout: number;
} {
  const headersTimeout = limits.headersTimeoutMs;
  return {
    headersTimeout,
    requestTimeout: headersTimeout + BODY_TIMEOUT_MS,
    connectionsCheckingInterval: Math.min(1_000, Math.max(25, Math.floor(headersTimeout / 4))),
    handshakeTimeout: headersTimeout,
  };
}

export interface SocketGuardOptions {
  readonly maxPerIp: number;
  readonly fdGuard: FdGuard;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
}

export class SocketGuard {
  private readonly perIp = new Map<string, number>();
  private open = 0;
  private lastLog = 0;
  private unlogged = 0;

  constructor(private readonly options: SocketGuardOptions) {}

  /** Open sockets, every kind. */
  get total(): number {
    return this.open;
  }

  /** Open sockets from `ip` (the one asking included). */
  fromIp(ip: string): number {
    return this.perIp.get(ip) ?? 0;
  }

  /**
   * Why a WebSocket upgrade from `ip` is refused (near the open-file limit, or its address holds
   * more than `maxConnectionsPerIp` sockets, this one included), counted; or null to go on.
   */
  upgradeRefusal(ip: string): ServmanError | null {
    const { maxPerIp, fdGuard, metrics } = this.options;
    // One file per socket: refuse with the fix before the limit makes accept() fail in bulk.
    if (fdGuard.full(this.open)) {
      metrics.limited.inc({ limit: "open_files" });
      fdGuard.warn(this.open);
      return new ServmanError("unavailable", "gateway is at capacity (open-file limit); try another gateway");
    }
    if (this.fromIp(ip) > maxPerIp) {
      metrics.limited.inc({ limit: "connections_per_ip" });
      return new ServmanError("rate_limited", `too many connections from ${ip} (limit ${maxPerIp})`);
    }
    return null;
  }

  /**
   * The server's `connection` listener: counts the socket, or destroys it when its address holds
   * more than `maxConnectionsPerIp` sockets already, or near the open-file limit. One socket past
   * the per-IP limit, and a band of the open-file reserve, are let in so that a WebSocket upgrade
   * can be told why it is refused (an error frame, close 1008); past those, sockets are destroyed
   * at once, so a flood of them cannot hold files until a timeout.
   */
  accept(socket: Socket): void {
    const ip = socket.remoteAddress;
    if (ip === undefined) return void socket.destroy(); // already gone
    const { maxPerIp, fdGuard, metrics } = this.options;
    let refused: "connections_per_ip" | "open_files" | null = null;
    if (this.fromIp(ip) > maxPerIp) refused = "connections_per_ip";
    else if (fdGuard.full(this.open, FD_RESERVE / 2)) refused = "open_files";
    if (refused !== null) {
      metrics.limited.inc({ limit: refused });
      if (refused === "open_files") fdGuard.warn(this.open);
      this.logRefusal(ip, refused);
      return void socket.destroy();
    }
    this.open++;
    this.perIp.set(ip, this.fromIp(ip) + 1);
    socket.once("close", () => {
      this.open--;
      const left = this.fromIp(ip) - 1;
      if (left <= 0) this.perIp.delete(ip);
      else this.perIp.set(ip, left);
    });
  }

  private logRefusal(ip: string, limit: string): void {
    this.unlogged++;
    const now = Date.now();
    if (now - this.lastLog < LOG_EVERY_MS) return;
    this.options.logger.warn({ ip, limit, refused: this.unlogged, maxConnectionsPerIp: this.options.maxPerIp }, "sockets refused at accept");
    this.lastLog = now;
    this.unlogged = 0;
  }
}
