/**
 * Delivery of one instance's events to its clients' session channels, with nothing lost silently.
 *
 * A publish that reached no gateway (its client's connection dropped, or its gateway died) is
 * kept for that client, in order and bounded, until the client resumes its session on some
 * gateway: then the kept events go out as one `replay`, with the count of any that did not fit.
 * A publish that failed (Redis unreachable) cannot be kept reliably; it is counted, and the client
 * hears `dropped` with that count as soon as a later event reaches it.
 */
import type { Logger } from "pino";

/** Events kept per client while it is away, at most... */
export const MAX_KEPT_EVENTS = 1_000;
/** ...and at most this much text (UTF-16 units), whichever comes first. */
export const MAX_KEPT_CHARS = 8 * 1024 * 1024;

export interface DeliveryHost {
  /** Publishes and resolves with the number of subscribers that received it. */
  publishCounted(channel: string, payload: string): Promise<number>;
  /** Fire-and-forget publish. */
  publish(channel: string, payload: string): void;
  /** Resolves once every publish issued before it has been answered. */
  settled(): Promise<void>;
  sessionChannel(client: string): string;
}

interface Box {
  events: string[];
  chars: number;
  /** Events that did not fit, or whose publish failed. */
  dropped: number;
}

export class MemberDelivery {
  private readonly boxes = new Map<string, Box>();

  constructor(
    private readonly instance: string,
    private readonly host: DeliveryHost,
    private readonly logger: Logger,
  ) {}

  /** Sends one event (JSON text) to a client's session. */
  deliver(client: string, payload: string): void {
    this.host.publishCounted(this.host.sessionChannel(client), payload).then(
      (receivers) => {
        if (receivers === 0) this.keep(client, payload);
        else if (this.boxes.size > 0) this.reportFailures(client);
      },
      () => this.box(client).dropped++,
    );
  }

  private box(client: string): Box {
    let box = this.boxes.get(client);
    if (!box) this.boxes.set(client, (box = { events: [], chars: 0, dropped: 0 }));
    return box;
  }

  private keep(client: string, payload: string): void {
    const box = this.box(client);
    if (box.dropped === 0 && box.events.length < MAX_KEPT_EVENTS && box.chars + payload.length <= MAX_KEPT_CHARS) {
      box.events.push(payload);
      box.chars += payload.length;
    } else {
      // Once one event is dropped, later ones are too: what is replayed stays a gapless prefix.
      box.dropped++;
    }
  }

  /** The client is reachable again after publishes failed: it hears how many it missed. */
  private reportFailures(client: string): void {
    const box = this.boxes.get(client);
    if (!box || box.events.length > 0 || box.dropped === 0) return;
    this.boxes.delete(client);
    this.host.publish(this.host.sessionChannel(client), JSON.stringify({ type: "dropped", instance: this.instance, count: box.dropped }));
  }

  /**
   * The client resumed on the gateway listening on `reply`: what was kept for it goes there as
   * one `replay`, after every earlier publish has been answered (so nothing kept is missed).
   */
  async replay(client: string, reply: string, member: boolean): Promise<void> {
    await this.host.settled().catch(() => {});
    const box = this.boxes.get(client);
    this.boxes.delete(client);
    const events = box?.events ?? [];
    const dropped = box?.dropped ?? 0;
    if (events.length > 0 || dropped > 0) this.logger.info({ client, replayed: events.length, dropped }, "replaying events kept for a resumed client");
    // The kept events are JSON texts already: spliced in, not parsed and encoded again.
    const head = JSON.stringify({ type: "replay", instance: this.instance, member, dropped });
    this.host.publish(reply, `${head.slice(0, -1)},"events":[${events.join(",")}]}`);
  }

  /** The client is gone for good: nothing kept for it matters any more. */
  discard(client: string): void {
    this.boxes.delete(client);
  }
}
