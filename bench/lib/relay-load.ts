/**
 * The two relay workloads, identical for Servman and its floor: sequential round trips on one
 * connection (latency), and many connections each keeping a window of messages in flight
 * (throughput). Replies are matched first-in first-out, which relies on per-connection ordering,
 * a guarantee both chains give; every message still unanswered at the end counts as lost.
 * They drive raw text pipes (relay) as well as client SDKs (peer): anything that sends a message
 * and reports each reply.
 */
import { LoadPhases, type MeasureHooks } from "./load-phases.js";

/** What the workloads drive: send one message (`M`: raw text, or an SDK's payload), hear each reply. */
export interface LoadPipe<M = string> {
  send(message: M): void;
  /** Called once per reply, which is not read (null: stop listening). */
  onFrame(handler: (() => void) | null): void;
}

/** Sends `text` on `pipe` and resolves with the ms until the next frame arrives on it. */
function roundTrip<M>(pipe: LoadPipe<M>, text: M, timeoutMs: number): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      pipe.onFrame(null);
      reject(new Error(`a round trip got no reply within ${timeoutMs} ms`));
    }, timeoutMs);
    const start = performance.now();
    pipe.onFrame(() => {
      const ms = performance.now() - start;
      clearTimeout(timer);
      pipe.onFrame(null);
      resolve(ms);
    });
    pipe.send(text);
  });
}

/**
 * Sequential round trips on each of `pipes` in turn: every round sends one message on each pipe
 * and waits for its reply before the next, `warmup + rounds` times, the order reversed every
 * other round. So when there are several (Servman and its floor), each sees the same moments of
 * the machine's load, a few hundred microseconds apart, rather than one getting a quiet second
 * and the other a busy one. Returns, per pipe, the last `rounds` round-trip times in ms.
 * `frame(p, i)` builds the i-th message of pipe p.
 */
export async function sequentialRoundTrips<M>(pipes: readonly LoadPipe<M>[], frame: (pipe: number, i: number) => M, warmup: number, rounds: number, timeoutMs = 10_000): Promise<number[][]> {
  const samples = pipes.map(() => [] as number[]);
  const order = pipes.map((_, p) => p);
  for (let i = 0; i < warmup + rounds; i++) {
    for (const p of i % 2 === 0 ? order : [...order].reverse()) {
      const ms = await roundTrip(pipes[p], frame(p, i), timeoutMs);
      if (i >= warmup) samples[p].push(ms);
    }
  }
  return samples;
}

/** What a pipelined run measured. */
export interface PipelinedResult {
  clients: number;
  window: number;
  /** Replies received during the measured interval, per second. */
  messagesPerSecond: number;
  /** Round-trip times of the replies received during the measured interval, in ms. */
  samples: number[];
  /** Messages sent in total (warm-up included). */
  sent: number;
  /** Replies received in total. */
  received: number;
  /** Sent but never answered, after waiting `drainMs` at the end. */
  lost: number;
  measuredMs: number;
}

/**
 * Each pipe keeps `window` messages in flight: every reply is answered by the next message, until
 * `warmupMs + durationMs` have passed. Only replies in the last `durationMs` are counted; `hooks`
 * run when that interval starts and ends (to read CPU counters over exactly that interval).
 */
export async function pipelinedLoad<M>(
  pipes: readonly LoadPipe<M>[],
  frame: (client: number, seq: number) => M,
  window: number,
  warmupMs: number,
  durationMs: number,
  hooks: MeasureHooks = {},
  drainMs = 10_000,
): Promise<PipelinedResult> {
  const phases = new LoadPhases();
  let sent = 0;
  let received = 0;
  let counted = 0;
  const samples: number[] = [];
  let outstanding = 0;
  const queues = pipes.map(() => [] as number[]);
  const heads = pipes.map(() => 0);
  const seqs = pipes.map(() => 0);

  const sendOne = (c: number) => {
    queues[c].push(performance.now());
    sent++;
    outstanding++;
    pipes[c].send(frame(c, seqs[c]++));
  };
  pipes.forEach((pipe, c) => {
    pipe.onFrame(() => {
      const q = queues[c];
      const start = q[heads[c]];
      if (start === undefined) return; // A frame that answers nothing we sent (should not happen).
      heads[c]++;
      // Compact now and then so the FIFO does not grow without bound.
      if (heads[c] > 4096) {
        q.splice(0, heads[c]);
        heads[c] = 0;
      }
      received++;
      outstanding--;
      if (phases.measuring) {
        counted++;
        samples.push(performance.now() - start);
      }
      if (phases.sending) sendOne(c);
      else if (outstanding === 0) phases.idle();
    });
  });

  for (let c = 0; c < pipes.length; c++) for (let w = 0; w < window; w++) sendOne(c);
  const measuredMs = await phases.run(warmupMs, durationMs, hooks, () => outstanding > 0, drainMs);
  for (const pipe of pipes) pipe.onFrame(null);
  return {
    clients: pipes.length,
    window,
    messagesPerSecond: Math.round((counted * 1000) / measuredMs),
    samples,
    sent,
    received,
    lost: outstanding,
    measuredMs: Math.round(measuredMs),
  };
}
