/**
 * Time and timers as a class sees them, for classes whose timing a test drives by hand (with a
 * manual clock, test/helpers/manual-clock.ts) rather than by waiting. Everything else uses
 * {@link systemClock}.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  /** Runs `fn` once, `ms` from now; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown;
  /** Cancels a timer of this clock; `undefined` or a timer that already ran is ignored. */
  clearTimeout(handle: unknown): void;
}

/** The process's clock: `Date.now()` and the global timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout | undefined),
};
