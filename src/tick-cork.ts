/**
 * Write batching for the relay's streams: everything written to a stream during one turn of the
 * event loop leaves in one write syscall instead of one each. A turn is every I/O callback of one
 * poll (each client connection's frames, each Redis reply, each IPC read) and the ticks they
 * queue: batching per turn rather than per tick (one callback) lets a gateway's publishes for
 * many client connections share one write. Order is kept (each stream is FIFO) and nothing waits
 * past the end of the turn (one `setImmediate` for every stream corked in it). A service process,
 * with one input, batches per tick instead (corkUntilNextTick).
 */
import type { Writable } from "node:stream";

/** Streams corked during this turn, and the tasks to run at its end. */
let corked: Writable[] = [];
let tasks: (() => void)[] = [];
let scheduled = false;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(endTurn);
}

function endTurn(): void {
  scheduled = false;
  const streams = corked;
  const due = tasks;
  corked = [];
  tasks = [];
  // One failing write must not leave the other streams corked: each runs, the first error is rethrown.
  let failure: { err: unknown } | undefined;
  for (const stream of streams) {
    try {
      stream.uncork();
    } catch (err) {
      failure ??= { err };
    }
  }
  for (const task of due) {
    try {
      task();
    } catch (err) {
      failure ??= { err };
    }
  }
  if (failure) throw failure.err;
}

/**
 * Corks `stream` until the current turn of the event loop has run, unless it is corked already.
 * Call before each write of a burst; the first call of a turn does the corking.
 */
export function corkUntilTurnEnd(stream: Writable): void {
  if (stream.writableCorked > 0 || !stream.writable) return;
  stream.cork();
  corked.push(stream);
  schedule();
}

/**
 * Corks `stream` until the current tick's code has run (process.nextTick), unless it is corked
 * already: for a process with one input (a service, whose node's messages come in one read per
 * turn), where batching per turn would gain nothing and a `setImmediate` per read costs more
 * (measured on a sequential echo: about 10% more CPU in the service).
 */
export function corkUntilNextTick(stream: Writable): void {
  if (stream.writableCorked > 0 || !stream.writable) return;
  stream.cork();
  process.nextTick(uncork, stream);
}

function uncork(stream: Writable): void {
  stream.uncork();
}

/**
 * Runs `task` once the current turn of the event loop has run (with the uncorking of the streams
 * above, after it): for output a caller batches itself. Pass a function made once, not one per
 * message.
 */
export function atTurnEnd(task: () => void): void {
  tasks.push(task);
  schedule();
}

/**
 * Writes out what a corked `stream` holds once it passes `bytes`, rather than at the end of the
 * turn: a large burst is not held back in memory, nor counted as unsent output for longer.
 */
export function flushPast(stream: Writable, bytes: number): void {
  // Uncorked for good: the end of the turn finds it uncorked already, and leaves it so.
  if (stream.writableCorked > 0 && stream.writableLength >= bytes) stream.uncork();
}
