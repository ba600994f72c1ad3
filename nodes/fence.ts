/**
 * Fencing (docs/architecture.md#fencing): a node that stopped answering for longer than its
 * record's TTL (a long GC or swap pause, a frozen VM, a partition from Redis) may have been
 * declared dead meanwhile, its instances reported lost or relaunched elsewhere. When it carries
 * on, nothing its instances send may reach a client until the node has confirmed that it is still
 * the registration the cluster knows.
 *
 * The node registers under an incarnation (a random token, in its node record and in the records
 * of the instances it claims). Each heartbeat that finds the record still naming it confirms it.
 * Publishing is allowed while the last confirmation is recent enough that no reaper can have
 * declared the node dead since ({@link SAFE_MS}); past that, output is held, a heartbeat is asked
 * for at once, and the held output goes out in order once it confirms, or is discarded when the
 * node turns out to have been declared dead ({@link NodeFence.renew}). Output of instances of an
 * earlier incarnation is dropped for good. Messages from Redis for the node's instances are held
 * the same way ({@link NodeFence.defer}), so a stale process gets nothing that arrived while it was
 * frozen. The check is two clock reads per message: no Redis call.
 */
import { performance } from "node:perf_hooks";
import { nanoid } from "nanoid";
import { ServmanError } from "../src/errors.js";
import { HEARTBEAT_MS, LIVENESS_TTL_MS } from "../src/registry/liveness.js";

/**
 * How old the last confirmation may be for the node to publish. A reaper declares a node dead no
 * sooner than LIVENESS_TTL_MS after the heartbeat that last wrote its record (plus its own
 * DEATH_CONFIRM_MS); a confirmation counts from when that heartbeat was sent, so anything published
 * less than LIVENESS_TTL_MS after it cannot follow the death. One heartbeat interval of that is kept
 * as a margin (a slow reply, clock rates), and a healthy node, confirmed every HEARTBEAT_MS,
 * never gets near it.
 */
export const SAFE_MS = LIVENESS_TTL_MS - HEARTBEAT_MS;

/** Traffic held while unconfirmed, at most this much text (UTF-16 units); past it, it is dropped. */
export const MAX_HELD_CHARS = 16 * 1024 * 1024;

/** Where the fence publishes, and how it asks for a confirmation. */
export interface FenceHost {
  publish(channel: string, payload: string): void;
  publishCounted(channel: string, payload: string): Promise<number>;
  /** Runs a heartbeat (the fence check) as soon as possible. */
  check(): void;
  /**
   * True while the publishing connection is up. Commands given to a connection that is down wait
   * in its queue and leave whenever it is back, maybe long after the node was declared dead: the
   * fence holds them itself instead, and lets them go only after a confirmation.
   */
  ready(): boolean;
}

/** When a heartbeat was sent, on both clocks (a pause may show on one only). */
export interface Instant {
  wall: number;
  mono: number;
}

/** Something held until the node is confirmed: an instance's output, or a message for an instance. */
interface Held {
  incarnation: string;
  chars: number;
  /** Confirmed: it goes ahead. */
  go(): void;
  /** Fenced, or past the bound: it never will. */
  drop(): void;
}

const nothing = () => {};

const stale = () => new ServmanError("unavailable", "output of an instance of a registration declared dead");

export class NodeFence {
  /** The current registration's token; a new one after each fencing. */
  incarnation = nanoid(16);
  /** Times the node found it had been declared dead and fenced itself. */
  count = 0;
  private confirmed: Instant = { wall: -Infinity, mono: -Infinity };
  private held: Held[] = [];
  private heldChars = 0;

  constructor(private readonly host: FenceHost) {}

  /** Now, to be passed to {@link confirm} once the heartbeat sent now succeeded. */
  static now(): Instant {
    return { wall: Date.now(), mono: performance.now() };
  }

  /** True while the last confirmation is recent enough, on both clocks, to publish. */
  get safe(): boolean {
    return Date.now() - this.confirmed.wall < SAFE_MS && performance.now() - this.confirmed.mono < SAFE_MS;
  }

  /** True when a message may pass now: confirmed recently, and nothing held that it must follow. */
  get open(): boolean {
    return this.held.length === 0 && this.safe && this.host.ready();
  }

  /** Milliseconds since the last confirmation (the larger of the two clocks' counts). */
  get sinceConfirmed(): number {
    return Math.max(Date.now() - this.confirmed.wall, performance.now() - this.confirmed.mono);
  }

  /** Publishes for an instance of registration `incarnation`, or holds or drops it (see above). */
  publish(incarnation: string, channel: string, payload: string): void {
    if (incarnation !== this.incarnation) return;
    if (this.open) return this.host.publish(channel, payload);
    this.hold({ incarnation, chars: payload.length, go: () => this.host.publish(channel, payload), drop: nothing });
  }

  /** As {@link publish}; resolves with the receivers, rejects when dropped. */
  publishCounted(incarnation: string, channel: string, payload: string): Promise<number> {
    if (incarnation !== this.incarnation) return Promise.reject(stale());
    if (this.open) return this.host.publishCounted(channel, payload);
    return new Promise((resolve, reject) =>
      this.hold({ incarnation, chars: payload.length, go: () => void this.host.publishCounted(channel, payload).then(resolve, reject), drop: () => reject(stale()) }),
    );
  }

  /**
   * Anything else that must wait for a confirmation (`chars` long: a message from Redis for an
   * instance, a log line of one): `run` runs now, or once the node is confirmed (after what was
   * held before it), or never if the node was declared dead meanwhile.
   */
  defer(chars: number, run: () => void): void {
    if (this.open) return run();
    this.hold({ incarnation: this.incarnation, chars, go: run, drop: nothing });
  }

  private hold(entry: Held): void {
    if (this.heldChars + entry.chars > MAX_HELD_CHARS) {
      // An event for a client counts as a failed publish: the client hears `dropped` later.
      entry.drop();
      return;
    }
    const first = this.held.length === 0;
    this.held.push(entry);
    this.heldChars += entry.chars;
    if (first) this.host.check();
  }

  /**
   * A heartbeat sent at `sent` found the registration current. Held output goes out, in order,
   * once that is recent enough; otherwise another heartbeat is asked for.
   */
  confirm(sent: Instant): void {
    this.confirmed = { wall: Math.max(this.confirmed.wall, sent.wall), mono: Math.max(this.confirmed.mono, sent.mono) };
    if (this.held.length === 0) return;
    if (!this.safe || !this.host.ready()) return this.host.check();
    const held = this.held;
    this.held = [];
    this.heldChars = 0;
    for (const entry of held) {
      if (entry.incarnation !== this.incarnation) entry.drop();
      else entry.go();
    }
  }

  /**
   * The node was declared dead: a new registration begins, unconfirmed, and whatever was held
   * is discarded (its clients were told the instance was lost, or joined its relaunch). Returns
   * the old incarnation.
   */
  renew(): string {
    const old = this.incarnation;
    this.incarnation = nanoid(16);
    this.count++;
    this.confirmed = { wall: -Infinity, mono: -Infinity };
    const held = this.held;
    this.held = [];
    this.heldChars = 0;
    for (const entry of held) entry.drop();
    return old;
  }
}
