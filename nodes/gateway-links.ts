/**
 * What one instance's delivery remembers of each gateway it sends fanouts to, so that a Redis
 * failover loses nothing silently (docs/architecture.md#failover):
 *
 * - **A chain.** Each fanout names the previous one sent to the same gateway (`prev`), within this
 *   delivery's `run`. On a Redis Cluster, commands to a failed master are retried by the client in
 *   no fixed order; the gateway puts fanouts back in order by the chain and reports a link that
 *   never came (`gap`).
 *   A fanout the node knows will not arrive (its publish failed, or reached nobody) is announced
 *   (`skip`), so the gateway need not wait for it.
 * - **A ring** of the last fanouts to each gateway (their `seq` and sessions, references only), to
 *   answer a `gap` with who missed how many.
 * - **Rewinds.** A fanout that reached no subscriber leaves its sessions "away" (their events
 *   kept) until they resume. A gateway whose subscriber was only reconnecting never closed their
 *   sockets, so they would never resume: the node keeps asking that gateway, while its sessions
 *   are away, to resume them itself (`rewind`), until one is heard.
 */
import { nanoid } from "nanoid";

/** Fanouts remembered per gateway for answering a `gap`. */
const RING = 1_024;
/** How often a rewind is asked again while no subscriber hears it, and for how long at most. */
const REWIND_MS = 250;
const REWIND_FOR_MS = 60_000;
/** After a rewind was heard, how soon to look again for sessions still stranded (its resume failed). */
const RECHECK_MS = 2_000;

/** One fanout sent to a gateway. */
export interface SentFanout {
  readonly seq: number;
  /** The fanout it follows in the chain. */
  readonly prev: number;
  readonly sessions: readonly string[];
  /** Its sessions were already told (kept for them, or counted as dropped): not part of a gap. */
  accounted: boolean;
}

interface Link {
  /** `seq` of the last fanout sent to the gateway in this run; 0 before the first. */
  last: number;
  sent: SentFanout[];
  rewind: NodeJS.Timeout | undefined;
  rewindUntil: number;
}

export interface LinksHost {
  /** Publishes on the gateway's channel; resolves with the receivers (0 when it failed). */
  publishToGateway(gateway: string, payload: string): Promise<number>;
  /** The sessions held by `gateway` whose events are kept and that no resume is bringing back. */
  stranded(gateway: string): string[];
}

export class GatewayLinks {
  /** Tells this delivery's fanouts from those of an earlier run of the same instance id. */
  readonly run = nanoid(10);
  private readonly links = new Map<string, Link>();
  private closed = false;

  constructor(
    private readonly instance: string,
    private readonly host: LinksHost,
  ) {}

  private link(gateway: string): Link {
    let link = this.links.get(gateway);
    if (!link) this.links.set(gateway, (link = { last: 0, sent: [], rewind: undefined, rewindUntil: 0 }));
    return link;
  }

  /** Records fanout `seq` to `gateway`; returns it, with the `prev` it carries. */
  next(gateway: string, seq: number, sessions: readonly string[]): SentFanout {
    const link = this.link(gateway);
    const sent: SentFanout = { seq, prev: link.last, sessions, accounted: false };
    link.last = seq;
    link.sent.push(sent);
    // Trimmed in batches: one splice per RING fanouts rather than a shift per fanout.
    if (link.sent.length >= 2 * RING) link.sent.splice(0, RING);
    return sent;
  }

  /**
   * Who missed how many of the fanouts to `gateway` numbered after `after` up to `through`. When
   * some of them are no longer remembered, `unknown` says so: each of the gateway's sessions is
   * then counted one more (at least one event lost, how many is not known).
   */
  gap(gateway: string, run: string, after: number, through: number): { missed: Map<string, number>; unknown: boolean } {
    const missed = new Map<string, number>();
    const link = this.links.get(gateway);
    if (run !== this.run || !link) return { missed, unknown: false };
    for (const sent of link.sent) {
      if (sent.seq <= after || sent.seq > through || sent.accounted) continue;
      sent.accounted = true;
      for (const session of sent.sessions) missed.set(session, (missed.get(session) ?? 0) + 1);
    }
    const oldest = link.sent[0]?.seq ?? Infinity;
    return { missed, unknown: oldest > after + 1 && oldest <= through };
  }

  /**
   * Fanout `sent` to `gateway` will never arrive (its publish failed or reached nobody) and its
   * sessions were told otherwise: the gateway need not wait for it to keep the chain.
   */
  skipped(gateway: string, sent: SentFanout): void {
    sent.accounted = true;
    const skip = JSON.stringify({ type: "skip", instance: this.instance, run: this.run, seq: sent.seq, prev: sent.prev });
    void this.host.publishToGateway(gateway, skip);
  }

  /** A fanout to `gateway` reached nobody: its sessions' events are kept; ask the gateway to resume them. */
  rewindLater(gateway: string): void {
    const link = this.link(gateway);
    link.rewindUntil = Date.now() + REWIND_FOR_MS;
    if (link.rewind !== undefined || this.closed) return;
    const tick = () => {
      link.rewind = undefined;
      const sessions = this.host.stranded(gateway);
      if (sessions.length === 0 || this.closed) return;
      const rewind = JSON.stringify({ type: "rewind", instance: this.instance, sessions });
      void this.host.publishToGateway(gateway, rewind).then((receivers) => {
        if (this.closed || Date.now() > link.rewindUntil) return;
        // Heard: the gateway resumes them; still stranded a while later, it is asked again.
        link.rewind = setTimeout(tick, receivers > 0 ? RECHECK_MS : REWIND_MS);
        link.rewind.unref();
      });
    };
    link.rewind = setTimeout(tick, REWIND_MS);
    link.rewind.unref();
  }

  /** Stops asking (the chains stay: the instance's last events, `closed`, still follow them). Idempotent. */
  close(): void {
    this.closed = true;
    for (const link of this.links.values()) clearTimeout(link.rewind);
  }
}
