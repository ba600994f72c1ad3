/**
 * What clients send an instance while its process restarts: held, in order and bounded, and
 * handed to the new process once it is ready. What does not fit is counted per client, so each
 * sender hears `dropped` with its own count.
 */

import { clientOf } from "./stalled-delivery.js";

/** Client messages held for a restarting process, at most... */
const MAX_HELD = 10_000;

export class HeldMessages {
  private readonly held: string[] = [];
  private chars = 0;
  /** Per client, messages that did not fit. */
  private readonly dropped = new Map<string, number>();

  /**
   * @param maxChars  ...and at most this much text (UTF-16 units), whichever comes first: the
   *   task's `maxQueuedBytes`, as they are all handed to the new process at once.
   */
  constructor(private readonly maxChars: number) {}

  /** Holds one payload (task-protocol JSON text), or counts it as dropped for its sender. */
  hold(payload: string): void {
    if (this.held.length < MAX_HELD && this.chars + payload.length <= this.maxChars) {
      this.held.push(payload);
      this.chars += payload.length;
      return;
    }
    const client = clientOf(payload);
    if (client !== undefined) this.dropped.set(client, (this.dropped.get(client) ?? 0) + 1);
  }

  /** Hands every held payload to `send`, in order, and returns the drop counts per client. */
  release(send: (payload: string) => void): Map<string, number> {
    for (const payload of this.held.splice(0)) send(payload);
    this.chars = 0;
    const dropped = new Map(this.dropped);
    this.dropped.clear();
    return dropped;
  }
}
