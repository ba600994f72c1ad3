/**
 * The phases of a closed-loop load run (pipelined echoes, broadcasts), once its first messages
 * are out: a warm-up, the measured interval (the only one counted, between the hooks that read
 * CPU counters), then a drain of what is still in flight, bounded in time.
 */
import { sleep } from "./concurrency.js";

/** Run when the measured interval starts and ends (to read CPU counters over exactly that interval). */
export interface MeasureHooks {
  onMeasureStart?(): void;
  onMeasureEnd?(): void;
}

/** What a load's reply handlers read (`measuring`, `sending`) and call (`idle`) while `run` goes. */
export class LoadPhases {
  /** True during the measured interval: count what arrives. */
  measuring = false;
  /** False from the end of the measured interval: send nothing more, only drain. */
  sending = true;
  #drained: (() => void) | null = null;

  /** Call once nothing is in flight any more after `sending` turned false. */
  idle(): void {
    this.#drained?.();
  }

  /**
   * Waits `warmupMs`, measures `durationMs`, then waits until `inFlight()` is false (`idle`) or
   * `drainMs` passed. Resolves with the measured interval's length in ms.
   */
  async run(warmupMs: number, durationMs: number, hooks: MeasureHooks, inFlight: () => boolean, drainMs: number): Promise<number> {
    await sleep(warmupMs);
    hooks.onMeasureStart?.();
    this.measuring = true;
    const start = performance.now();
    await sleep(durationMs);
    this.measuring = false;
    this.sending = false;
    const measuredMs = performance.now() - start;
    hooks.onMeasureEnd?.();
    if (inFlight()) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        this.#drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return measuredMs;
  }
}
