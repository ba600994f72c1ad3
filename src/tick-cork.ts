/**
 * Write batching for the relay's streams: everything written to a stream during one tick leaves
 * in one write syscall instead of one each. Order is kept (the stream is FIFO) and nothing waits
 * longer than the end of the current tick.
 */
import type { Writable } from "node:stream";

/**
 * Corks `stream` until the current tick's code has run (process.nextTick), unless it is corked
 * already. Call before each write of a burst; the first call of a tick does the corking.
 */
export function corkUntilNextTick(stream: Writable): void {
  if (stream.writableCorked > 0 || !stream.writable) return;
  stream.cork();
  process.nextTick(uncork, stream);
}

/**
 * Writes out what a corked `stream` holds once it passes `bytes`, rather than at the end of the
 * tick: a large burst is not held back in memory, nor counted as unsent output for longer.
 */
export function flushPast(stream: Writable, bytes: number): void {
  if (stream.writableCorked > 0 && stream.writableLength >= bytes) uncork(stream);
}

function uncork(stream: Writable): void {
  stream.uncork();
}
