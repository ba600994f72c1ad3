/**
 * Delivery of one instance's events to its clients, with nothing lost silently.
 *
 * Events go by gateway, not by client (docs/architecture.md#fan-out-by-gateway): each client's
 * gateway is known from its `join` (and its `resume`), and one event for many clients is one
 * `fanout` per gateway, which that gateway splits among its sessions. A gateway answers
 * `undelivered` for the sessions it could not write it to (gone, detaching, or resuming and not
 * replayed yet); a fanout that reached no gateway (it died) is undelivered for all of them. From
 * then on the client is "away": its events are kept here, not sent, until it resumes. Every event
 * is numbered (`seq`), and kept events stay in that order whichever answer came first.
 *
 * A resume first waits for the client's old gateway to have handled every fanout sent to it
 * (a `barrier`, answered `flushed` after its `undelivered`s), so what is replayed is complete and
 * in order; then the kept events go out as one `replay`, with the count of any that did not fit,
 * and the client's events are sent again, now to its new gateway. They stay kept until the
 * resuming gateway acknowledges (`ack`) that it passed them to its client: a resume cut short
 * (its connection dropped, or another took the session) loses none, and the next resume gets
 * them again, followed by any kept since.
 *
 * Each client's box numbers what it kept: positions `first`, `first + 1`, ... for the kept events,
 * then one position per dropped event. A replay says up to which position it went (`through`)
 * and an ack frees everything before a position, so a late or repeated ack frees nothing twice.
 * A publish that failed (Redis unreachable) cannot be kept reliably; it is counted, and the client
 * hears `dropped` with that count as soon as a later event reaches it.
 *
 * A client joined through a gateway that names no `gateway` (an older version) gets its events
 * on its session channel, one publish each, kept when that reached nobody, as before.
 */
import type { Logger } from "pino";
import { EVENT_KEY, type ToGateway, type ToInstance } from "../src/protocol/bus-messages.js";
import { splitEvent } from "../src/protocol/bus-parse.js";
import { GatewayLinks } from "./gateway-links.js";

/** Events kept per client while it is away, at most... */
export const MAX_KEPT_EVENTS = 1_000;
/** ...and at most this much text (UTF-16 units), whichever comes first. */
const MAX_KEPT_CHARS = 8 * 1024 * 1024;
/**
 * How long a resume waits for the old gateway's `flushed` (a dead one answers at once: nobody
 * receives the barrier). Under the resuming gateway's 5 s wait for the replay.
 */
const BARRIER_WAIT_MS = 2_000;

export interface DeliveryHost {
  /** Publishes and resolves with the number of subscribers that received it. */
  publishCounted(channel: string, payload: string): Promise<number>;
  /** Fire-and-forget publish. */
  publish(channel: string, payload: string): void;
  /** Resolves once every publish issued before it has been answered. */
  settled(): Promise<void>;
  sessionChannel(client: string): string;
  gatewayChannel(gateway: string): string;
}

interface Box {
  /** Position of `events[0]`. */
  first: number;
  events: string[];
  /** Each kept event's number (`seq`), ascending. */
  seqs: number[];
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
  /** Client -> the gateway holding its session (from its join or resume). */
  private readonly routes = new Map<string, string>();
  /** Clients whose events are kept, not sent: a gateway missed one, or a resume is under way. */
  private readonly away = new Set<string>();
  /** Client -> its latest resume: an older one that finishes late does not end its wait. */
  private readonly resumes = new Map<string, number>();
  private resumeCount = 0;
  /** Barrier id -> the resume waiting for it. */
  private readonly barriers = new Map<number, () => void>();
  private barrierCount = 0;
  /** Numbers the events, in the order the service sent them. */
  private seq = 0;
  /** Per gateway: the `prev` chain, the fanouts a `gap` may ask about, rewinds. */
  private readonly links: GatewayLinks;
  /** What every fanout of this instance begins with, up to its `seq`, and its run as JSON. */
  private readonly fanoutPrefix: string;
  private readonly runJson: string;

  constructor(
    private readonly instance: string,
    private readonly host: DeliveryHost,
    private readonly logger: Logger,
  ) {
    this.links = new GatewayLinks(instance, {
      publishToGateway: (gateway, payload) => host.publishCounted(host.gatewayChannel(gateway), payload).catch(() => 0),
      stranded: (gateway) => [...this.away].filter((client) => this.routes.get(client) === gateway && !this.resumes.has(client)),
    });
    this.fanoutPrefix = `{"type":"fanout","instance":${JSON.stringify(instance)},"seq":`;
    this.runJson = JSON.stringify(this.links.run);
  }

  /** A gateway's message about delivery, from the instance's channel (`payload`: its text). */
  handle(message: Extract<ToInstance, { type: "resume" | "ack" | "undelivered" | "flushed" | "gap" }>, payload: string, member: (client: string) => boolean): void {
    switch (message.type) {
      case "resume":
        return void this.resume(message.client, message.reply, message.gateway, member(message.client));
      case "ack":
        return this.ack(message.client, message.through);
      case "undelivered":
        // The event as the node wrote it, not encoded again.
        return this.undelivered(message.seq, message.sessions, splitEvent(payload)?.event ?? JSON.stringify(message.event));
      case "flushed":
        return this.flushed(message.id);
      case "gap":
        return this.gap(message.gateway, message.run, message.after, message.through);
    }
  }

  /**
   * Gateway `gateway` never got some fanouts (a failover lost them in flight): their sessions hear
   * `dropped` with how many they missed. Those kept for (away) hear it in their replay instead.
   */
  private gap(gateway: string, run: string, after: number, through: number): void {
    const { missed, unknown } = this.links.gap(gateway, run, after, through);
    if (unknown) for (const [client, route] of this.routes) if (route === gateway) missed.set(client, (missed.get(client) ?? 0) + 1);
    if (missed.size === 0) return;
    this.logger.warn({ gateway, after, through, sessions: missed.size }, "a gateway missed fanouts (Redis failover); its sessions hear dropped");
    for (const [client, count] of missed) {
      if (this.away.has(client)) this.box(client).dropped += count;
      else if (this.routes.get(client) === gateway) this.deliver(client, JSON.stringify({ type: "dropped", instance: this.instance, count }));
    }
  }

  /** The client's session is held by `gateway` (undefined: a gateway that does not say). */
  route(client: string, gateway: string | undefined): void {
    if (gateway === undefined) this.routes.delete(client);
    else this.routes.set(client, gateway);
  }

  /** Sends one event (JSON text) to a client's session. */
  deliver(client: string, payload: string): void {
    this.send(payload, [client]);
  }

  /** Sends one event (JSON text) to each of `clients`: one publish per gateway. */
  send(payload: string, clients: Iterable<string>): void {
    const seq = ++this.seq;
    // Most events go to one gateway: a map only once a second one turns up.
    let first: string | undefined;
    let firstSessions: string[] = [];
    let others: Map<string, string[]> | undefined;
    for (const client of clients) {
      const gateway = this.routes.get(client);
      if (this.away.size > 0 && this.away.has(client)) this.keep(client, seq, payload);
      else if (gateway === undefined) this.toSession(client, seq, payload);
      else if (gateway === first) firstSessions.push(client);
      else if (first === undefined) {
        first = gateway;
        firstSessions = [client];
      } else {
        others ??= new Map();
        const sessions = others.get(gateway);
        if (sessions) sessions.push(client);
        else others.set(gateway, [client]);
      }
    }
    if (first !== undefined) this.fanout(first, firstSessions, seq, payload);
    if (others) for (const [gateway, sessions] of others) this.fanout(gateway, sessions, seq, payload);
  }

  private fanout(gateway: string, sessions: string[], seq: number, payload: string): void {
    const sent = this.links.next(gateway, seq, sessions);
    // JSON.stringify of the head ({type, instance, seq, sessions, prev, run}, in that order: the
    // gateway's fast path reads that form), with the event, JSON text already, spliced in last.
    const text = `${this.fanoutPrefix}${seq},"sessions":${JSON.stringify(sessions)},"prev":${sent.prev},"run":${this.runJson}${EVENT_KEY}${payload}}`;
    this.host.publishCounted(this.host.gatewayChannel(gateway), text).then(
      (receivers) => {
        if (receivers > 0) {
          if (this.boxes.size > 0) for (const client of sessions) this.reportFailures(client);
          return;
        }
        // The gateway is gone, or its subscriber is reconnecting (a failover): every session it
        // held is away until it resumes somewhere, or until the gateway, asked, resumes it.
        for (const client of sessions) this.missed(client, seq, payload);
        this.links.skipped(gateway, sent);
        this.links.rewindLater(gateway);
      },
      () => {
        for (const client of sessions) this.box(client).dropped++;
        this.links.skipped(gateway, sent);
      },
    );
  }

  /** A client whose gateway names no `gateway`: its own session channel, as before fan-out. */
  private toSession(client: string, seq: number, payload: string): void {
    this.host.publishCounted(this.host.sessionChannel(client), payload).then(
      (receivers) => {
        if (receivers === 0) this.keep(client, seq, payload);
        else if (this.boxes.size > 0) this.reportFailures(client);
      },
      () => this.box(client).dropped++,
    );
  }

  /**
   * A gateway could not write event `seq` (JSON text) to these sessions: kept for them, and
   * their later events too, until they resume. A client that left is not kept for.
   */
  undelivered(seq: number, sessions: readonly string[], payload: string): void {
    for (const client of sessions) if (this.routes.has(client) || this.boxes.has(client)) this.missed(client, seq, payload);
  }

  private missed(client: string, seq: number, payload: string): void {
    this.away.add(client);
    this.keep(client, seq, payload);
  }

  private box(client: string): Box {
    let box = this.boxes.get(client);
    if (!box) this.boxes.set(client, (box = { first: this.floor, events: [], seqs: [], chars: 0, dropped: 0, replayed: false }));
    return box;
  }

  private keep(client: string, seq: number, payload: string): void {
    const box = this.box(client);
    // Answers come back out of order (a gateway's `undelivered` after later events were kept): by number.
    let at = box.events.length;
    while (at > 0 && box.seqs[at - 1] > seq) at--;
    // Before events a replay already sent, it can no longer be put in order: counted instead.
    const late = at < box.events.length && box.replayed;
    if (!late && box.dropped === 0 && box.events.length < MAX_KEPT_EVENTS && box.chars + payload.length <= MAX_KEPT_CHARS) {
      box.events.splice(at, 0, payload);
      box.seqs.splice(at, 0, seq);
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
    this.deliver(client, JSON.stringify({ type: "dropped", instance: this.instance, count: box.dropped }));
  }

  /**
   * The client resumed its session on `gateway`, listening on `reply`. Its events are kept
   * meanwhile; once its old gateway has answered for every fanout sent to it (barrier), what
   * was kept goes to `reply` as one `replay`, and its events go to `gateway` from then on.
   */
  async resume(client: string, reply: string, gateway: string | undefined, member: boolean): Promise<void> {
    const turn = ++this.resumeCount;
    this.resumes.set(client, turn);
    const old = this.routes.get(client);
    // Nothing is sent to the new gateway before the replay: it would not take it (docs/resume.md).
    this.away.add(client);
    this.route(client, gateway);
    if (old !== undefined) await this.barrier(old, client);
    await this.replay(client, reply, member);
    if (this.resumes.get(client) === turn) {
      this.resumes.delete(client);
      this.away.delete(client);
    }
  }

  /** Resolves once `gateway` has handled every fanout sent to it before now (or is gone, or took too long). */
  private barrier(gateway: string, client: string): Promise<void> {
    const id = ++this.barrierCount;
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.barriers.delete(id);
        resolve();
      };
      const timer = setTimeout(() => {
        this.logger.warn({ client, gateway }, "a resumed client's old gateway did not answer its barrier; replaying without it");
        done();
      }, BARRIER_WAIT_MS);
      timer.unref();
      this.barriers.set(id, done);
      const barrier: ToGateway = { type: "barrier", instance: this.instance, client, id };
      this.host.publishCounted(this.host.gatewayChannel(gateway), JSON.stringify(barrier)).then((receivers) => {
        if (receivers === 0) done();
      }, done);
    });
  }

  /** A gateway answered barrier `id`: every `undelivered` it had for it came before. */
  flushed(id: number): void {
    this.barriers.get(id)?.();
  }

  /**
   * What was kept for the client goes to `reply` as one `replay`, after every earlier publish
   * has been answered (so nothing kept is missed). It stays kept until `ack`.
   */
  private async replay(client: string, reply: string, member: boolean): Promise<void> {
    // Waited on for order only: if Redis is unreachable, the replay's own publish reports it.
    await this.host.settled().catch(() => {});
    const box = this.boxes.get(client);
    const events = box?.events ?? [];
    const seqs = box?.seqs ?? [];
    const dropped = box?.dropped ?? 0;
    const through = box ? box.first + events.length + dropped : 0;
    if (box) {
      if (events.length === 0 && dropped === 0) this.remove(client, box);
      else box.replayed = true;
    }
    if (events.length > 0 || dropped > 0) this.logger.info({ client, replayed: events.length, dropped }, "replaying events kept for a resumed client");
    // The kept events are JSON texts already: spliced in, not parsed and encoded again.
    // `seqs` lets a gateway that already passed a later event live count older ones rather than reorder.
    const head = JSON.stringify({ type: "replay", instance: this.instance, member, dropped, through, seqs, run: this.links.run });
    this.host.publish(reply, `${head.slice(0, -1)},"events":[${events.join(",")}]}`);
  }

  /** The client's gateway passed on what was kept for it before position `through`: freed. */
  ack(client: string, through: number): void {
    const box = this.boxes.get(client);
    if (!box || !Number.isSafeInteger(through)) return;
    const events = Math.min(box.events.length, Math.max(0, through - box.first));
    for (const payload of box.events.splice(0, events)) box.chars -= payload.length;
    box.seqs.splice(0, events);
    box.first += events;
    if (box.events.length === 0) {
      const dropped = Math.min(box.dropped, Math.max(0, through - box.first));
      box.dropped -= dropped;
      box.first += dropped;
    }
    box.replayed = false;
    if (box.events.length === 0 && box.dropped === 0) this.remove(client, box);
  }

  /** The instance ended: no more rewinds. */
  close(): void {
    this.links.close();
  }

  /** The client is gone for good: nothing kept for it matters any more, nor where it was. */
  discard(client: string): void {
    this.routes.delete(client);
    this.away.delete(client);
    this.resumes.delete(client);
    const box = this.boxes.get(client);
    if (box) this.remove(client, box);
  }

  private remove(client: string, box: Box): void {
    this.boxes.delete(client);
    this.floor = Math.max(this.floor, box.first + box.events.length + box.dropped);
  }
}
