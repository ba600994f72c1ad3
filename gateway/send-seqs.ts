/**
 * A session's numbered sends on this connection (docs/protocol.md#numbered-sends): which numbers
 * were taken (a send whose number was already taken is not relayed twice), and how far every
 * taken send has been handled, told to the client as `accepted` so its SDK can forget them.
 *
 * "Handled" is relayed to the instance's node, or answered with an error (not joined, no node
 * listening, Redis unreachable): either way the gateway is done with it and the client must not
 * send it again, so a refused send never holds the count back. Publishes can settle out of order
 * (a send held behind a join, a cluster's shards), so the count is the highest number below which
 * every taken send has settled.
 */
import type { ServerFrame } from "../src/protocol/client-messages.js";

/** `accepted` is told once this many sends settled since the last one... */
const ACCEPTED_EVERY = 100;
/** ...or this long after a send settled, whichever comes first: one frame per burst, not per send. */
const ACCEPTED_AFTER_MS = 250;

export class SendSeqs {
  /** The highest number taken. */
  private last = 0;
  /** Taken numbers not settled yet, in the order taken (ascending), from `head` on. */
  private readonly pending: number[] = [];
  private head = 0;
  /** Settled numbers still behind an unsettled one. */
  private readonly early = new Set<number>();
  /** Every taken send up to here has settled. */
  private settled = 0;
  /** The last `accepted` told. */
  private told = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(private readonly send: (frame: ServerFrame) => void) {}

  /** Takes `seq` for a send; false when it was taken already (the send is a repeat). */
  take(seq: number): boolean {
    if (seq <= this.last) return false;
    this.last = seq;
    this.pending.push(seq);
    return true;
  }

  /** The send numbered `seq` was relayed or refused. */
  settle(seq: number): void {
    if (this.pending[this.head] !== seq) {
      this.early.add(seq);
      return;
    }
    this.head++;
    this.settled = seq;
    while (this.head < this.pending.length && this.early.delete(this.pending[this.head])) this.settled = this.pending[this.head++];
    if (this.head === this.pending.length) {
      this.pending.length = 0;
      this.head = 0;
    } else if (this.head > 1_024) {
      this.pending.splice(0, this.head);
      this.head = 0;
    }
    if (this.settled - this.told >= ACCEPTED_EVERY) this.tell();
    else this.timer ??= setTimeout(() => this.tell(), ACCEPTED_AFTER_MS);
  }

  /**
   * The session was resumed on this connection and the cluster has every send up to `acked`:
   * numbers up to it are taken, and counted as told.
   */
  resumedAt(acked: number): void {
    this.last = Math.max(this.last, acked);
    this.settled = Math.max(this.settled, acked);
    this.told = Math.max(this.told, acked);
  }

  private tell(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.closed || this.settled <= this.told) return;
    this.told = this.settled;
    this.send({ type: "accepted", seq: this.settled });
  }

  /** The connection closed: nothing more is told. Idempotent. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}
