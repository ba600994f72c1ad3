/**
 * Puts each instance's fanouts back in the order its node sent them to this gateway, by their
 * `prev` chain (nodes/gateway-links.ts). On one Redis they always come in order. On a Redis
 * Cluster, a master's death makes the client retry the publishes it had sent there in no fixed
 * order, so a fanout can come before the one it follows: it is held until that one comes, for at
 * most GAP_WAIT_MS (5 s). A link that never comes was lost with the master: the node is told (`gap`),
 * and its sessions hear `dropped`; the held fanouts go on, in order. A late one, after the gap was
 * told, is let go: it was counted in the `dropped`.
 */

/**
 * How long a fanout waits for the one before it. The cluster client retries what it had sent to
 * a dead master once a replica is promoted, while later publishes already go to the new master:
 * the wait must outlast a failover (2-3 s with a 1 s cluster-node-timeout) for those retries to
 * be put back in order rather than counted as lost.
 */
export const GAP_WAIT_MS = 5_000;
/** Fanouts held per instance at most; past it, the gap is told at once. */
const MAX_HELD = 1_000;
/** An instance's chain unused for this long is forgotten (the next fanout starts it again). */
const IDLE_MS = 5 * 60_000;

interface Held {
  seq: number;
  deliver: () => void;
}

interface Chain {
  run: string;
  /** `seq` of the last fanout delivered. */
  last: number;
  /** Fanouts waiting for their predecessor, by the `prev` they name. */
  held: Map<number, Held>;
  timer: NodeJS.Timeout | undefined;
  used: number;
}

/** Gateway `gateway` missed fanouts after `after` up to `through` of `run` of `instance`. */
export type GapReport = (instance: string, run: string, after: number, through: number) => void;

export class FanoutOrder {
  private readonly chains = new Map<string, Chain>();
  private takes = 0;

  constructor(private readonly onGap: GapReport) {}

  /**
   * Runs `deliver` for fanout `seq` of `instance` in chain order: now, once its predecessor came,
   * or never (a late one). Without `run`/`prev` (a node of an earlier version): now.
   */
  take(instance: string, run: string | undefined, seq: number, prev: number | undefined, deliver: () => void): void {
    if (run === undefined || prev === undefined) return deliver();
    if (++this.takes % 4_096 === 0) this.forgetIdle();
    let chain = this.chains.get(instance);
    if (chain && chain.run !== run) {
      // The instance's delivery started again (a relaunch): what the old one left goes first.
      this.skipAll(instance, chain, false);
      chain = undefined;
    }
    if (!chain) this.chains.set(instance, (chain = { run, last: prev, held: new Map(), timer: undefined, used: 0 }));
    chain.used = Date.now();
    if (seq <= chain.last) return;
    if (prev === chain.last) {
      deliver();
      chain.last = seq;
      return this.drain(chain);
    }
    chain.held.set(prev, { seq, deliver });
    if (chain.held.size > MAX_HELD) this.skipAll(instance, chain, true);
    else if (chain.timer === undefined) {
      const waiting = chain;
      chain.timer = setTimeout(() => this.skipAll(instance, waiting, true), GAP_WAIT_MS);
      chain.timer.unref();
    }
  }

  /** Fanouts held now, over every instance (for tests and metrics). */
  get held(): number {
    let n = 0;
    for (const chain of this.chains.values()) n += chain.held.size;
    return n;
  }

  private drain(chain: Chain): void {
    for (let next = chain.held.get(chain.last); next; next = chain.held.get(chain.last)) {
      chain.held.delete(chain.last);
      chain.last = next.seq;
      next.deliver();
    }
    if (chain.held.size === 0 && chain.timer !== undefined) {
      clearTimeout(chain.timer);
      chain.timer = undefined;
    }
  }

  /** Gives up waiting: each missing link is told (when `report`), and the held fanouts go out in order. */
  private skipAll(instance: string, chain: Chain, report: boolean): void {
    clearTimeout(chain.timer);
    chain.timer = undefined;
    while (chain.held.size > 0) {
      const next = Math.min(...chain.held.keys());
      if (report) this.onGap(instance, chain.run, chain.last, next);
      chain.last = next;
      this.drain(chain);
    }
  }

  private forgetIdle(): void {
    const before = Date.now() - IDLE_MS;
    for (const [instance, chain] of this.chains) if (chain.held.size === 0 && chain.used < before) this.chains.delete(instance);
  }

  /** Stops the timers; what is held is dropped (the gateway is closing). Idempotent. */
  close(): void {
    for (const chain of this.chains.values()) clearTimeout(chain.timer);
    this.chains.clear();
  }
}
