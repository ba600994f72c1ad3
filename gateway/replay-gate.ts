/**
 * The live events of a resuming session, held per instance until that instance's replay (what its
 * node kept while the session was detached) has gone to the client (docs/resume.md).
 *
 * A replay is acknowledged to its node only once its events were handed to the client's open
 * connection: until then the node keeps them, so a resume cut short loses none of them. A resume
 * cut short (`abandon`) forwards nothing more: replays are left to the node for the next resume,
 * and live events of an instance whose replay had not gone out, which cannot be put after the
 * events its node still keeps, are counted for a `dropped`.
 */
import type { Logger } from "pino";
import type { ToSession } from "../src/protocol/bus-messages.js";

/** How long live events of an instance wait for its replay before they go out anyway. */
const REPLAY_WAIT_MS = 5_000;

type Replay = Extract<ToSession, { type: "replay" }>;

/** Where a gate's events go. */
export interface GateOutput {
  /** One event (JSON text) to the client, as if it came from the bus. */
  send(text: string): void;
  /** An instance no longer counts the client as a member (it was kicked or restarted without it). */
  notMember(instance: string): void;
  /** The replay of `instance` up to position `through` reached the client: its node may free it. */
  ack(instance: string, through: number): void;
  /** True while the client's connection can take frames. */
  alive(): boolean;
  /** Every instance has replayed (or was waited for long enough): the resume is over. */
  finished(): void;
  /**
   * The highest `seq` of `instance`'s run `run` already passed to the client live (0: none).
   * A replayed event older than it can no longer go out in order: it is counted as dropped.
   */
  liveSeq(instance: string, run: string): number;
  /** A replay passed events of `run` up to `seq` to the client: later fanouts older than it are stale. */
  replayedThrough(instance: string, run: string, seq: number): void;
  /** The node of `instance` answered the `resume` at once (resume-answers.ts); absent: ignored. */
  answered?(instance: string, received: number): void;
}

/** Where a held live event came from, when it came in a fanout: its run and number. */
export interface FanoutSeq {
  run: string;
  seq: number;
}

interface Held {
  payload: string;
  fanout: FanoutSeq | undefined;
}

/** `intercept` returns true for a payload it took (held, counted, or a replay it handled). */
export class ReplayGate {
  /** Instance -> live events (JSON text) waiting for its replay. */
  private readonly held = new Map<string, Held[]>();
  /** Replays that came before `open`. */
  private early: Replay[] | null = [];
  private timer: NodeJS.Timeout | undefined;
  /** Once abandoned: instance (whose replay had not gone out) -> live events that were lost. */
  private lostCounts: Map<string, number> | null = null;
  private over = false;

  constructor(
    instances: Iterable<string>,
    private readonly out: GateOutput,
    private readonly logger: Logger,
  ) {
    for (const instance of instances) this.held.set(instance, []);
  }

  /** True once there is nothing left to hold (and the gate was not abandoned). */
  get done(): boolean {
    return this.lostCounts === null && this.held.size === 0 && this.early === null;
  }

  /**
   * True while `instance`'s replay has not arrived (or the resume was cut short): its live events
   * must stay with its node, which puts them after the ones it replays.
   */
  awaits(instance: string): boolean {
    if (this.lostCounts) return true;
    return this.held.has(instance) && !(this.early?.some((replay) => replay.instance === instance) ?? false);
  }

  /** Stops waiting for `instance` (it is gone). */
  forget(instance: string): void {
    this.held.delete(instance);
  }

  /** Replays may go out from now on (the `resumed` reply and the tail have been sent). */
  open(): void {
    if (this.lostCounts) return;
    const early = this.early ?? [];
    this.early = null;
    for (const replay of early) this.release(replay);
    if (this.held.size === 0) return this.finish();
    this.timer ??= setTimeout(() => {
      this.logger.warn({ instances: [...this.held.keys()] }, "no replay from some instances of a resumed session; sending their live events");
      for (const instance of [...this.held.keys()]) this.flush(instance);
    }, REPLAY_WAIT_MS);
  }

  intercept(payload: string, fanout?: FanoutSeq): boolean {
    let event: ToSession;
    try {
      event = JSON.parse(payload) as ToSession;
    } catch {
      return false;
    }
    if (event.type === "resume_answer") {
      if (!this.lostCounts) this.out.answered?.(event.instance, event.received);
      return true;
    }
    if (event.type === "replay") {
      // Abandoned: not acknowledged, so its node keeps it for the next resume.
      if (this.lostCounts) return true;
      if (this.early) this.early.push(event);
      else this.release(event);
      return true;
    }
    const instance = (event as { instance?: unknown }).instance;
    if (typeof instance !== "string") return false;
    if (this.lostCounts) {
      const lost = this.lostCounts.get(instance);
      if (lost === undefined) return false;
      this.lostCounts.set(instance, lost + 1);
      return true;
    }
    const held = this.held.get(instance);
    if (!held) return false;
    held.push({ payload, fanout });
    return true;
  }

  /**
   * The connection closed before every replay went out. Idempotent. From now on `lost` counts
   * the live events of the instances still waiting, which the next resume reports as `dropped`.
   */
  abandon(): void {
    if (this.lostCounts) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.early = null;
    this.lostCounts = new Map([...this.held].map(([instance, events]) => [instance, events.length]));
    this.held.clear();
  }

  /** After `abandon`: per instance, how many live events were lost (only those with some). */
  lost(): Map<string, number> {
    return new Map([...(this.lostCounts ?? [])].filter(([, count]) => count > 0));
  }

  private release(replay: Replay): void {
    // A connection on its way out takes no more: the replay stays with its node.
    if (!this.out.alive() || !this.held.has(replay.instance)) return;
    const { instance, run, seqs } = replay;
    // On a cluster, an event kept for the client (its fanout reached nobody) may have been
    // overtaken by a later one that reached it live: the older one is counted, not reordered.
    const live = seqs && run !== undefined ? this.out.liveSeq(instance, run) : 0;
    let dropped = replay.dropped;
    let newest = 0;
    const sent = new Set<number>();
    replay.events.forEach((event, i) => {
      const seq = seqs?.[i];
      if (live > 0 && (seq ?? Infinity) <= live) return void dropped++;
      this.out.send(JSON.stringify(event));
      if (seq !== undefined) {
        sent.add(seq);
        newest = Math.max(newest, seq);
      }
    });
    // And the reverse: a fanout in flight while later events were kept (a cluster's retries) may
    // come after them. Held behind the replay, it can no longer go out in order: counted.
    const held = this.held.get(instance) ?? [];
    const inOrder = held.filter(({ fanout }) => {
      if (run === undefined || fanout?.run !== run || fanout.seq > newest) return true;
      if (!sent.has(fanout.seq)) dropped++;
      return false;
    });
    this.held.set(instance, inOrder);
    if (dropped > 0) this.out.send(JSON.stringify({ type: "dropped", instance, count: dropped }));
    if (run !== undefined && newest > 0) this.out.replayedThrough(instance, run, newest);
    if (replay.through > 0) this.out.ack(instance, replay.through);
    if (!replay.member && !replay.events.some((e) => e.type === "closed")) this.out.notMember(instance);
    this.flush(instance);
  }

  private flush(instance: string): void {
    const held = this.held.get(instance);
    this.held.delete(instance);
    for (const { payload } of held ?? []) this.out.send(payload);
    if (this.held.size === 0) this.finish();
  }

  private finish(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.over || this.early !== null) return;
    this.over = true;
    this.out.finished();
  }
}
