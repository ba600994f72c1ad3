/**
 * What a session passed to its client live, per instance: the newest fanout `seq` of the
 * instance's current `run`. A replay (after a node kept events for a session whose connection
 * never closed) counts an event older than it instead of sending it out of order
 * (docs/architecture.md#failover). Fanouts a replay gate holds are live only once that gate has
 * let them go, which is before the next gate is installed.
 */
interface Seen {
  run: string;
  seq: number;
}

export class LiveSeqs {
  private readonly live = new Map<string, Seen>();
  private readonly held = new Map<string, Seen>();

  /** Fanout `seq` of `run` went to the client now (`held`: a gate holds it behind a replay). */
  note(instance: string, run: string, seq: number, held: boolean): void {
    remember(held ? this.held : this.live, instance, run, seq);
  }

  /** A new gate is installed: the previous one let everything it held go. */
  released(): void {
    for (const [instance, { run, seq }] of this.held) remember(this.live, instance, run, seq);
    this.held.clear();
  }

  /** The newest `seq` of `run` passed on live for `instance` (0: none). */
  newest(instance: string, run: string): number {
    const seen = this.live.get(instance);
    return seen?.run === run ? seen.seq : 0;
  }
}

/** Keeps `seq` if it is the newest of `run` (a new run starts over). */
function remember(seen: Map<string, Seen>, instance: string, run: string, seq: number): void {
  const last = seen.get(instance);
  // Updated in place: one entry per instance, not one object per event.
  if (last === undefined) seen.set(instance, { run, seq });
  else if (last.run !== run) {
    last.run = run;
    last.seq = seq;
  } else if (last.seq < seq) last.seq = seq;
}
