/**
 * WebSocket pings (docs/security.md#http-and-sockets). A peer that vanished without a FIN (a
 * phone that lost its network, a crashed NAT) leaves a connection that looks open forever; a ping
 * it never answers finds it. One timer serves every connection of the gateway.
 */
import type { WebSocket } from "ws";

interface State {
  /** When the unanswered ping was sent; null when none is outstanding. */
  pingedAt: number | null;
  /** When the last ping was sent (or the connection opened). */
  lastPing: number;
}

export interface KeepaliveOptions {
  /** Ping each connection this often; 0: never. */
  readonly intervalMs: number;
  /** Terminate a connection that has not answered within this. */
  readonly timeoutMs: number;
  /** Called for each connection terminated for not answering. */
  readonly onTimeout: (ws: WebSocket) => void;
}

export class Keepalive {
  private readonly states = new Map<WebSocket, State>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: KeepaliveOptions) {}

  /**
   * Pings `ws` from now on, until it closes. A pong, and any frame at all, proves the peer is
   * there. A connection that has not answered its ping within `timeoutMs` is terminated (no
   * close handshake: nobody would answer it), which the gateway treats as a dropped connection.
   */
  track(ws: WebSocket): void {
    if (this.options.intervalMs <= 0) return;
    const state: State = { pingedAt: null, lastPing: Date.now() };
    this.states.set(ws, state);
    const alive = () => (state.pingedAt = null);
    ws.on("pong", alive);
    ws.on("ping", alive);
    ws.on("message", alive);
    ws.once("close", () => {
      this.states.delete(ws);
      if (this.states.size === 0) this.stop();
    });
    // Ticks at the finer of the two periods, so neither overshoots by more than that.
    this.timer ??= setInterval(() => this.tick(), Math.min(this.options.intervalMs, this.options.timeoutMs)).unref();
  }

  private tick(): void {
    const now = Date.now();
    for (const [ws, state] of this.states) {
      if (state.pingedAt !== null) {
        if (now - state.pingedAt >= this.options.timeoutMs) {
          this.states.delete(ws);
          this.options.onTimeout(ws);
          ws.terminate();
        }
      } else if (now - state.lastPing >= this.options.intervalMs && ws.readyState === ws.OPEN) {
        state.pingedAt = now;
        state.lastPing = now;
        ws.ping();
      }
    }
  }

  /** Stops the timer (the gateway's shutdown). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
