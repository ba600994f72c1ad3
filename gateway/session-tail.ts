/**
 * A detaching session's tail: the events that reached its gateway after its client had gone and
 * before its channel was unsubscribed, written into the session record for whoever resumes it
 * (docs/resume.md). Bounded: past the bound events are counted per instance, and the resumed
 * client hears `dropped` with that count.
 */
import type { Logger } from "pino";
import type { ToSession } from "../src/protocol/bus-messages.js";

/** Events a detaching session keeps between its connection's end and its unsubscribe, at most. */
export const MAX_TAIL = 1_000;

export class SessionTail {
  private readonly events: string[] = [];
  /** Instance -> events past the bound. */
  private readonly overflowed = new Map<string, number>();
  private warned = false;

  constructor(private readonly logger: Logger) {}

  get full(): boolean {
    return this.events.length >= MAX_TAIL;
  }

  /** Keeps one event (JSON text). */
  push(payload: string): void {
    this.events.push(payload);
  }

  /** Counts an event past the bound for its instance (the tail spans one round trip: rare). */
  overflow(payload: string): void {
    if (!this.warned) this.logger.warn({ kept: MAX_TAIL }, "events for a detaching session past the tail bound are dropped (the resumed client hears dropped)");
    this.warned = true;
    let instance: unknown;
    try {
      instance = (JSON.parse(payload) as { instance?: unknown }).instance;
    } catch {
      return;
    }
    if (typeof instance === "string") this.overflowed.set(instance, (this.overflowed.get(instance) ?? 0) + 1);
  }

  /**
   * What to store: the kept events, then one `dropped` per instance for what did not fit, plus
   * `lost` (live events of a resume cut short that cannot be put back in order).
   */
  entries(lost: ReadonlyMap<string, number> = new Map()): string[] {
    const counts = new Map(this.overflowed);
    for (const [instance, count] of lost) counts.set(instance, (counts.get(instance) ?? 0) + count);
    const dropped = [...counts].map(([instance, count]) => JSON.stringify({ type: "dropped", instance, count } satisfies ToSession));
    return [...this.events, ...dropped];
  }
}
