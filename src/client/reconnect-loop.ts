/**
 * Getting a session back on a new connection (docs/resume.md#with-the-sdk): the gateways in
 * turn, round the list starting with the next one (the last may be the one that died), with
 * exponential backoff and full jitter, until one resumes it, one says it is gone, or time runs out.
 */
import { ServmanError } from "../errors.js";
import type { ReconnectOptions } from "./client-options.js";
import type { Welcome } from "./connection.js";

/** What the loop needs from its client. */
export interface ReconnectHost {
  open(url: string): Promise<Welcome>;
  /** Asks the connection just opened for the session; resolves with the `resumed` reply. */
  resume(): Promise<Record<string, unknown>>;
  /** True once the connection just opened is gone; `drop` closes it, to try another. */
  lost(): boolean;
  drop(): void;
  closing(): boolean;
  /** Attempt `attempt` starts after `delayMs` (told only for a drop, not for a first connection). */
  reconnecting(attempt: number, delayMs: number, code: number): void;
}

/** How a try to take the session back ended. */
export type ReconnectOutcome =
  | { kind: "resumed"; welcome: Welcome; reply: Record<string, unknown> }
  /** The session is gone (`err` says why): the connection `welcome` opened goes on as a new session. */
  | { kind: "reset"; welcome: Welcome; err: ServmanError }
  | { kind: "gave-up" };

export class ReconnectLoop {
  /** The URL tried last. */
  index = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly urls: readonly string[],
    private readonly options: Required<ReconnectOptions>,
  ) {}

  /**
   * Runs until the session is back or gone, or `giveUpAfterMs`. `code`: the close that started it;
   * undefined for the first connection of a saved session, which goes to the current URL at once.
   */
  async run(host: ReconnectHost, code: number | undefined): Promise<ReconnectOutcome> {
    const { giveUpAfterMs, maxDelayMs, initialDelayMs } = this.options;
    const giveUpAt = Date.now() + giveUpAfterMs;
    for (let attempt = 1; !host.closing() && Date.now() < giveUpAt; attempt++) {
      if (code !== undefined || attempt > 1) {
        const delayMs = Math.round(Math.random() * Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1)));
        if (code !== undefined) host.reconnecting(attempt, delayMs, code);
        await new Promise<void>((resolve) => {
          this.wake = resolve;
          this.timer = setTimeout(resolve, delayMs);
        });
        if (host.closing()) break;
        this.index = (this.index + 1) % this.urls.length;
      }
      let welcome: Welcome;
      try {
        welcome = await host.open(this.urls[this.index]);
      } catch {
        continue;
      }
      try {
        return { kind: "resumed", welcome, reply: await host.resume() };
      } catch (err) {
        const e = err instanceof ServmanError ? err : new ServmanError("internal", String(err));
        // Busy elsewhere, or this connection dropped: another try. Anything else: the session is gone.
        if (e.code !== "unavailable" && !host.lost()) return { kind: "reset", welcome, err: e };
        host.drop();
      }
    }
    return { kind: "gave-up" };
  }

  /** Ends the current wait at once (the client is closing). */
  stop(): void {
    clearTimeout(this.timer);
    this.wake?.();
  }
}
