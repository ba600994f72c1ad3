/**
 * What clients send an instance while its process restarts: held, in order and bounded, and
 * handed to the new process once it is ready. What does not fit is counted per client, so each
 * sender hears `dropped` with its own count.
 */

/** Client messages held for a restarting process, at most... */
const MAX_HELD = 10_000;
/** ...and at most this much text (UTF-16 units), whichever comes first. */
const MAX_HELD_CHARS = 16 * 1024 * 1024;

export class HeldMessages {
  private readonly held: string[] = [];
  private chars = 0;
  /** Per client, messages that did not fit. */
  private readonly dropped = new Map<string, number>();

  /** Holds one payload (task-protocol JSON text), or counts it as dropped for its sender. */
  hold(payload: string): void {
    if (this.held.length < MAX_HELD && this.chars + payload.length <= MAX_HELD_CHARS) {
      this.held.push(payload);
      this.chars += payload.length;
      return;
    }
    // Only overflow is parsed: to tell the sender what it lost.
    const client = (JSON.parse(payload) as { client?: string }).client;
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
