/**
 * The heartbeat client: launches its own heartbeat instance, joins it, sends `pings` pings
 * `intervalMs` apart, waits for every pong, stops the instance. Used by `servman heartbeat`.
 */
import { ServmanClient, type ServmanClientOptions } from "../../src/client/servman-client.js";
import { action } from "../../src/actions.js";

export interface HeartbeatRun {
  /** Round-trip times of the pongs received, in ms. */
  rtts: number[];
  /** Why the pair failed, or null when every pong arrived. */
  error: string | null;
}

export interface HeartbeatParams {
  task?: string;
  pings: number;
  intervalMs: number;
  /** How long to wait for the last pong. Default 10 000 ms. */
  pongTimeoutMs?: number;
  launchTimeoutMs?: number;
}

export class HeartbeatClient extends ServmanClient {
  private readonly sent = new Map<number, number>();
  private readonly rtts: number[] = [];
  private outOfOrder = 0;
  private lastSeq = -1;
  private allPongs: (() => void) | undefined;
  private expected = 0;

  constructor(url: string, options?: ServmanClientOptions) {
    super(url, options);
  }

  @action()
  pong(_instance: string, data: unknown): void {
    const seq = (data as { seq?: unknown } | null)?.seq;
    if (typeof seq !== "number") return;
    const start = this.sent.get(seq);
    if (start === undefined) return;
    this.sent.delete(seq);
    this.rtts.push(performance.now() - start);
    if (seq < this.lastSeq) this.outOfOrder++;
    this.lastSeq = seq;
    if (this.rtts.length === this.expected) this.allPongs?.();
  }

  /** Runs one heartbeat pair on an already connected client. Never throws. */
  async run(params: HeartbeatParams): Promise<HeartbeatRun> {
    this.expected = params.pings;
    let instance: string | undefined;
    try {
      const done = new Promise<void>((resolve) => (this.allPongs = resolve));
      ({ instance } = await this.launch(params.task ?? "heartbeat", { timeoutMs: params.launchTimeoutMs ?? 30_000 }));
      await this.join(instance);
      for (let seq = 0; seq < params.pings; seq++) {
        if (seq > 0) await new Promise((r) => setTimeout(r, params.intervalMs));
        this.sent.set(seq, performance.now());
        this.send(instance, "ping", { seq });
      }
      if (params.pings > 0) {
        let timer: NodeJS.Timeout | undefined;
        const timeout = new Promise<"timeout">((r) => (timer = setTimeout(() => r("timeout"), params.pongTimeoutMs ?? 10_000)));
        const outcome = await Promise.race([done, timeout]);
        clearTimeout(timer);
        if (outcome === "timeout") throw new Error(`${params.pings - this.rtts.length} of ${params.pings} pongs missing`);
      }
      if (this.outOfOrder > 0) throw new Error(`${this.outOfOrder} pongs out of order`);
      await this.stop(instance);
      return { rtts: this.rtts, error: null };
    } catch (err) {
      if (instance !== undefined) await this.stop(instance).catch(() => {});
      return { rtts: this.rtts, error: err instanceof Error ? err.message : String(err) };
    }
  }
}
