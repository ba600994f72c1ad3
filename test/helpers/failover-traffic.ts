/**
 * Traffic through a Redis failover (docs/redis.md#topologies: nothing lost silently). One joined raw client sends
 * numbered echoes steadily while its instance broadcasts a numbered `tick` stream (the echo
 * fixture's `tick` action). Afterwards every send must have been echoed or answered with an
 * error, and every tick received (in order) or counted in a `dropped` for that instance.
 */
import { eventually } from "./processes.js";
import type { RawClient } from "./cluster.js";

export interface TrafficReport {
  /** Echo sends issued, echoed back, answered with an error (by code). */
  sent: number;
  echoed: number;
  refused: Record<string, number>;
  /** Sends neither echoed nor refused (silent loss). */
  unanswered: number[];
  /** Ticks the instance broadcast, ticks received (in arrival order), and `dropped` counts summed. */
  ticksSent: number;
  ticks: number[];
  dropped: number;
  /** From `mark()` to the first echo of a send issued after it (ms); undefined if none came. */
  firstRelayMs: number | undefined;
}

export class FailoverTraffic {
  private n = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly echoed = new Set<number>();
  private readonly refused = new Map<number, string>();
  private readonly ticks: number[] = [];
  private dropped = 0;
  private markAt = 0;
  private markN = Number.POSITIVE_INFINITY;
  /** When the first echo of a send issued after `mark()` arrived. */
  firstRelayAt: number | undefined;

  constructor(
    readonly client: RawClient,
    readonly instance: string,
    private readonly everyMs = 20,
  ) {
    // A listener of its own: the raw client's queue still holds every frame for `next`.
    client.ws.on("message", (data, isBinary) => {
      if (isBinary) return;
      let f: Record<string, any>;
      try {
        f = JSON.parse(data.toString()) as Record<string, any>;
      } catch {
        return;
      }
      if (f.type === "message" && f.instance === instance && f.action === "echo" && typeof f.data === "number") {
        this.echoed.add(f.data);
        if (this.firstRelayAt === undefined && f.data >= this.markN) this.firstRelayAt = Date.now();
      } else if (f.type === "message" && f.instance === instance && f.action === "tick") this.ticks.push(f.data as number);
      else if (f.type === "dropped" && f.instance === instance) this.dropped += f.count as number;
      else if (f.type === "error" && typeof f.id === "string" && f.id.startsWith("e")) this.refused.set(Number(f.id.slice(1)), f.code as string);
    });
  }

  /** Starts the tick stream and the echoes; resolves once both flow. */
  async start(): Promise<void> {
    this.client.send({ type: "send", instance: this.instance, action: "tick", data: { everyMs: this.everyMs } });
    this.timer = setInterval(() => {
      const n = this.n++;
      this.client.send({ type: "send", instance: this.instance, action: "echo", data: n, id: `e${n}` });
    }, this.everyMs);
    await eventually(() => this.echoed.size >= 5 && this.ticks.length >= 5, "echoes and ticks flowing");
  }

  /** The moment the failure starts (SIGKILL): `firstRelayMs` counts from here. */
  mark(): void {
    this.markAt = Date.now();
    this.markN = this.n;
  }

  /** Resolves once a send issued after `mark()` was echoed, and ticks flow again after it. */
  async recovered(ms = 60_000): Promise<void> {
    await eventually(() => this.firstRelayAt !== undefined, "a message relayed after the failure", ms);
    const seen = this.ticks.length;
    await eventually(() => this.ticks.length >= seen + 10, "ticks flowing after the failure", ms);
  }

  /** Stops sending, stops the ticks, and waits for every send to be answered (or `ms` to pass). */
  async stop(ms = 30_000): Promise<TrafficReport> {
    clearInterval(this.timer);
    let ticksSent = -1;
    for (let i = 0; ticksSent < 0 && i < 10; i++) {
      const id = `stop-${i}`;
      this.client.send({ type: "send", instance: this.instance, action: "tick", data: { stop: true }, id });
      const answer = await this.client.next((f) => (f.type === "message" && f.action === "ticked") || f.id === id, 5_000).catch(() => null);
      if (answer?.action === "ticked") ticksSent = answer.data as number;
    }
    if (ticksSent < 0) throw new Error("the instance never answered the ticks' stop");
    const unanswered = () => [...Array(this.n).keys()].filter((n) => !this.echoed.has(n) && !this.refused.has(n));
    await eventually(() => unanswered().length === 0 && this.ticks.length + this.dropped >= ticksSent, "every send answered and every tick accounted for", ms).catch(() => {});
    const refused: Record<string, number> = {};
    for (const code of this.refused.values()) refused[code] = (refused[code] ?? 0) + 1;
    return {
      sent: this.n,
      echoed: this.echoed.size,
      refused,
      unanswered: unanswered(),
      ticksSent,
      ticks: [...this.ticks],
      dropped: this.dropped,
      firstRelayMs: this.firstRelayAt === undefined ? undefined : this.firstRelayAt - this.markAt,
    };
  }
}

/** One line for `t.diagnostic`. */
export function describeTraffic(r: TrafficReport): string {
  const refused = Object.entries(r.refused)
    .map(([code, n]) => `${n} ${code}`)
    .join(", ");
  return (
    `SIGKILL -> first relayed message ${r.firstRelayMs} ms; sends ${r.sent}: ${r.echoed} echoed, refused [${refused || "none"}], ${r.unanswered.length} unanswered; ` +
    `ticks ${r.ticksSent}: ${r.ticks.length} received (${disorder(r).outOfOrder.length} out of order, ${disorder(r).duplicates} twice), ${r.dropped} dropped`
  );
}

/** Ticks received out of order (each `tick b after a`), and how many arrived twice. */
export function disorder(r: TrafficReport): { outOfOrder: string[]; duplicates: number } {
  const outOfOrder: string[] = [];
  for (let i = 1; i < r.ticks.length; i++) if (r.ticks[i] <= r.ticks[i - 1]) outOfOrder.push(`tick ${r.ticks[i]} after ${r.ticks[i - 1]}`);
  return { outOfOrder, duplicates: r.ticks.length - new Set(r.ticks).size };
}

/**
 * The contract's loss checks on a report: every send echoed or refused, every tick received, or
 * else counted in a `dropped`. An echo is an event of the instance like a tick, so one `dropped`
 * count covers a missing echo or a missing tick: the missing ones together must not outnumber it.
 */
export function lostNothingSilently(r: TrafficReport): string[] {
  const got = new Set(r.ticks);
  const missingTicks = [...Array(r.ticksSent).keys()].filter((n) => !got.has(n));
  const missing = r.unanswered.length + missingTicks.length;
  if (missing <= r.dropped) return [];
  const list = (ns: number[]) => `${ns.slice(0, 10).join(",")}${ns.length > 10 ? `... (${ns.length})` : ""}`;
  return [`${missing} events missing but ${r.dropped} counted dropped: echoes of sends ${list(r.unanswered)}; ticks ${list(missingTicks)}`];
}
