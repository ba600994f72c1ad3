/**
 * Opening many idle client connections at a bounded rate of handshakes in flight, timing each
 * one, and holding them until told to drop them.
 */
import { mapLimit } from "./concurrency.js";
import type { TextPipe } from "./wire-client.js";

/** Connections opened, how long it took, and each handshake's time. */
export interface OpenedConnections<P extends TextPipe> {
  pipes: P[];
  durationMs: number;
  /** Time of each connection until usable (open, or welcome for Servman), in ms. */
  handshakeMs: number[];
}

/** Opens `count` connections with `connect`, `concurrency` at a time. */
export async function openMany<P extends TextPipe>(count: number, concurrency: number, connect: (i: number) => Promise<P>): Promise<OpenedConnections<P>> {
  const handshakeMs = new Array<number>(count);
  const start = performance.now();
  const pipes = await mapLimit(count, concurrency, async (i) => {
    const t = performance.now();
    const pipe = await connect(i);
    handshakeMs[i] = performance.now() - t;
    return pipe;
  });
  return { pipes, durationMs: performance.now() - start, handshakeMs };
}

/** Drops every connection at once (no close handshake: 10,000 of them would take a while). */
export function dropAll(pipes: readonly TextPipe[]): void {
  for (const pipe of pipes) pipe.terminate();
}
