/**
 * Backpressure from an instance's process to its clients. A service that stops reading its input
 * (stdin, or its IPC channel) would otherwise let each client message wait in the node's memory,
 * without bound, until the node runs out of it and takes every instance on it down. Past the
 * task's `maxQueuedBytes` of text waiting to be written to the process, a client message is not
 * delivered: its sender hears `dropped` (one event per client per tick, with the count), the node
 * counts it, and logs one warning per stall (docs/security.md#containment-inside-nodes).
 *
 * Only client messages are bounded: the node's own control messages (start, join, leave,
 * shutdown) are few and small, and a `shutdown` must never be lost.
 */
import type { Logger } from "pino";
import { MESSAGE_PREFIX } from "../src/protocol/bus-messages.js";

/** `message` as a gateway publishes it begins so (JSON.stringify keeps key order). */
const CLIENT_PREFIX = `${MESSAGE_PREFIX},"client":"`;

/**
 * The sender of a client message given as JSON text: read from its first bytes as a gateway
 * writes them, else (another key order, an escaped id) from a parse. Undefined if it has none.
 */
export function clientOf(payload: string): string | undefined {
  if (payload.startsWith(CLIENT_PREFIX)) {
    const end = payload.indexOf('"', CLIENT_PREFIX.length);
    const id = end > 0 ? payload.slice(CLIENT_PREFIX.length, end) : "";
    if (id !== "" && !id.includes("\\")) return id;
  }
  try {
    const client = (JSON.parse(payload) as { client?: unknown }).client;
    return typeof client === "string" ? client : undefined;
  } catch {
    return undefined;
  }
}

export interface StalledDeliveryHost {
  /** Tells `client` that `count` of its messages were not delivered (a `dropped` event). */
  dropped(client: string, count: number): void;
  /** Counts client messages dropped because the process was not reading (node metrics). */
  countDropped(count: number): void;
}

export class StalledDelivery {
  /** Per client, messages dropped this tick, told at the end of it. */
  private readonly pending = new Map<string, number>();
  private pendingTotal = 0;
  /** True from the first dropped message until one is delivered again. */
  private stalled = false;
  private droppedInStall = 0;

  constructor(
    private readonly maxQueuedBytes: number,
    private readonly host: StalledDeliveryHost,
    private readonly logger: Logger,
  ) {}

  /**
   * True when a client message (JSON text) may be handed to the process, with `queuedBytes`
   * already waiting for it; otherwise it is counted as dropped for its sender. One message always
   * fits into an empty queue, so what waits stays under `maxQueuedBytes` or one message.
   */
  admit(payload: string, queuedBytes: number): boolean {
    if (queuedBytes === 0 || queuedBytes + payload.length <= this.maxQueuedBytes) {
      if (this.stalled) this.endStall();
      return true;
    }
    if (!this.stalled) {
      this.stalled = true;
      this.logger.warn({ queuedBytes, maxQueuedBytes: this.maxQueuedBytes }, "service is not reading its input; dropping client messages until it does");
    }
    this.droppedInStall++;
    const client = clientOf(payload);
    if (this.pendingTotal++ === 0) process.nextTick(() => this.flush());
    if (client !== undefined) this.pending.set(client, (this.pending.get(client) ?? 0) + 1);
    return false;
  }

  private endStall(): void {
    this.logger.info({ dropped: this.droppedInStall }, "service reads its input again; delivering client messages");
    this.stalled = false;
    this.droppedInStall = 0;
  }

  private flush(): void {
    this.host.countDropped(this.pendingTotal);
    this.pendingTotal = 0;
    for (const [client, count] of this.pending) this.host.dropped(client, count);
    this.pending.clear();
  }
}
