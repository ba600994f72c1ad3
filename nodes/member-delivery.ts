/**
 * Delivery of one instance's events to its clients' session channels, with nothing lost silently.
 *
 * A publish that reached no gateway (its client's connection dropped, or its gateway died) is
 * kept for that client, in order and bounded, until the client resumes its session on some
 * gateway: then the kept events go out as one `replay`, with the count of any that did not fit.
 * They stay kept until the resuming gateway acknowledges (`ack`) that it passed them to its
 * client: a resume cut short (its connection dropped, or another took the session) loses none,
 * and the next resume gets them again, followed by any kept since.
 *
 * Each client's box numbers what it kept: positions `first`, `first + 1`, ... for the kept events,
 * then one position per dropped event. A replay says up to which position it went (`through`)
 * and an ack frees everything before a position, so a late or repeated ack frees nothing twice.
 * (Per-session sequence numbers can later take the place of these positions.)
 * A publish that failed (Redis unreachable) cannot be kept reliably; it is counted, and the client
 * hears `dropped` with that count as soon as a later event reaches it.
 */
import type { Logger } from "pino";

/** Events kept per client while it is away, at most... */
export const MAX_KEPT_EVENTS = 1_000;
/** ...and at most this much text (UTF-16 units), whichever comes first. */
const MAX_KEPT_CHARS = 8 * 1024 * 1024;

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
  /** Position of `events[0]`. */
  first: number;
  events: string[];
  chars: number;
  /** Events that did not fit, or whose publish failed (positions after the kept events). */
  dropped: number;
  /** A replay of this box went out and is not acknowledged yet. */
  replayed: boolean;
}

export class MemberDelivery {
  private readonly boxes = new Map<string, Box>();
  /**
   * Where a new box starts counting: past every position a removed box had, so that a late ack
   * meant for an old box can never free a newer one's events.
   */
  private floor = 0;

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
    if (!box) this.boxes.set(client, (box = { first: this.floor, events: [], chars: 0, dropped: 0, replayed: false }));
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
    // A box waiting for its ack reported its drops in the replay already.
    if (!box || box.events.length > 0 || box.dropped === 0 || box.replayed) return;
    this.remove(client, box);
    this.host.publish(this.host.sessionChannel(client), JSON.stringify({ type: "dropped", instance: this.instance, count: box.dropped }));
  }

  /**
   * The client resumed on the gateway listening on `reply`: what was kept for it goes there as
   * one `replay`, after every earlier publish has been answered (so nothing kept is missed). It
   * stays kept until `ack`.
   */
  async replay(client: string, reply: string, member: boolean): Promise<void> {
    // Waited on for order only: if Redis is unreachable, the replay's own publish reports it.
    await this.host.settled().catch(() => {});
    const box = this.boxes.get(client);
    const events = box?.events ?? [];
    const dropped = box?.dropped ?? 0;
    const through = box ? box.first + events.length + dropped : 0;
    if (box) {
      if (events.length === 0 && dropped === 0) this.remove(client, box);
      else box.replayed = true;
    }
    if (events.length > 0 || dropped > 0) this.logger.info({ client, replayed: events.length, dropped }, "replaying events kept for a resumed client");
    // The kept events are JSON texts already: spliced in, not parsed and encoded again.
    const head = JSON.stringify({ type: "replay", instance: this.instance, member, dropped, through });
    this.host.publish(reply, `${head.slice(0, -1)},"events":[${events.join(",")}]}`);
  }

  /** The client's gateway passed on what was kept for it before position `through`: freed. */
  ack(client: string, through: number): void {
    const box = this.boxes.get(client);
    if (!box || !Number.isSafeInteger(through)) return;
    const events = Math.min(box.events.length, Math.max(0, through - box.first));
    for (const payload of box.events.splice(0, events)) box.chars -= payload.length;
    box.first += events;
    if (box.events.length === 0) {
      const dropped = Math.min(box.dropped, Math.max(0, through - box.first));
      box.dropped -= dropped;
      box.first += dropped;
    }
    box.replayed = false;
    if (box.events.length === 0 && box.dropped === 0) this.remove(client, box);
  }

  /** The client is gone for good: nothing kept for it matters any more. */
  discard(client: string): void {
    const box = this.boxes.get(client);
    if (box) this.remove(client, box);
  }

  private remove(client: string, box: Box): void {
    this.boxes.delete(client);
    this.floor = Math.max(this.floor, box.first + box.events.length + box.dropped);
  }
}
