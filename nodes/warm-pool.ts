/**
 * A task's warm pool: up to `warm` processes started ahead of any launch (forked or spawned, their
 * code loaded or loading, waiting for `start`), so that a launch only sends `start` and waits for
 * `ready`. `start` is the first message a service gets (docs/task-protocol.md#lifecycle), so a process that waits for it
 * cannot tell a warm start from a cold one.
 *
 * Waiting processes take no capacity slot; the pool holds `warm` of them, and starts none while
 * the node is near its open-file limit. It refills in the background after each take, starting
 * the missing processes at once (they load concurrently; at most the node's launchConcurrency per
 * refill), so a pool emptied by a burst is whole again one load time later, not one per process.
 *
 * With `warmMax` above `warm`, the pool's target follows demand: the processes asked for (taken,
 * or missed on an empty pool) in the last {@link DEMAND_WINDOW_MS}, at least `warm`, at most
 * `warmMax`, its growth past `warm` at most the node's free capacity slots (more could not become
 * instances now). As those asks age out of the window the target falls back, and the newest extra
 * processes (the least likely to have loaded) are ended. Counting asks in a window, rather than
 * estimating a rate, keeps the target a plain function of the clock that tests can step.
 *
 * A process that dies while it waits is replaced after a backoff that doubles while they keep dying,
 * so a task whose process cannot start does not fork in a hot loop. Warm processes lead their own
 * process group and exit when their node goes away (IPC disconnect, stdin EOF), like instances.
 */
import type { ChildProcess } from "node:child_process";
import type { Logger } from "pino";
import { systemClock, type Clock } from "../src/clock.js";
import type { TaskConfig } from "../src/config/options.js";
import { LineSplitter } from "./line-splitter.js";
import { killProcessGroup, spawnInstanceProcess } from "./spawn-process.js";

/** First wait before replacing a process that died while it waited; doubles per death in a row. */
const BACKOFF_BASE_MS = 100;
const BACKOFF_MAX_MS = 30_000;
/** A process that waited this long before it died breaks a streak of deaths: it did start. */
const STABLE_MS = 10_000;
/** Next look at the open-file budget after the node was near its limit. */
const FD_RETRY_MS = 1_000;
/**
 * A refill waits this long after a take, so that forking the replacement (a few ms of the node's
 * event loop, then a core busy loading it) does not compete with the launch being served.
 */
const REFILL_DELAY_MS = 50;
/** Takes counted for the target of a pool whose `warmMax` is above `warm`. */
export const DEMAND_WINDOW_MS = 10_000;
/** Lines a waiting process wrote that are kept to explain its death. */
const DEATH_NOTE_LINES = 5;
const MAX_LINE = 16 * 1024;

export interface WarmPoolOptions {
  task: TaskConfig;
  /** Working directory of the processes (the node's baseDir). */
  cwd: string;
  logger: Logger;
  /** False while the node must not start another process (near its open-file limit). */
  mayStart(): boolean;
  /** Free capacity slots of the node: bounds the pool's growth past `warm`. Default: unbounded. */
  room?(): number;
  /** Processes one refill starts at most (the node's launchConcurrency); the rest follow 50 ms later. Default: all. */
  batch?: number;
  /** Time and timers of the refills and backoffs. Default: {@link systemClock}. */
  clock?: Clock;
}

/** One waiting process and what the pool listens to on it. */
interface Waiting {
  child: ChildProcess;
  startedAt: number;
  /** Its last lines of output, for the log if it dies. */
  lines: string[];
  /** Settles once it has exited and its output is drained. */
  closed: Promise<void>;
  /** Removes the pool's listeners: the process is handed over, or gone. */
  release(): void;
  /** Ended by the pool because it shrank: its exit is no failure. */
  retired: boolean;
}

export class WarmPool {
  private readonly task: TaskConfig;
  private readonly logger: Logger;
  /** Oldest first. */
  private readonly waiting: Waiting[] = [];
  /** Processes that died while waiting, in a row. */
  private failures = 0;
  private readonly clock: Clock;
  private timer: unknown;
  private timerAt = 0;
  /**
   * When processes were asked for (hits and misses), oldest first: the newest `warmMax` at most,
   * which count the same as all of them for a target capped at `warmMax`.
   */
  private readonly takes: number[] = [];
  /** The next look at whether the pool should shrink. */
  private trimTimer: unknown;
  /** Extra processes ended by a shrink, until they have exited. */
  private readonly retiring = new Set<Waiting>();
  private closing: Promise<void> | undefined;

  constructor(private readonly options: WarmPoolOptions) {
    this.task = options.task;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
  }

  /**
   * Processes the pool holds when full: `warm`, or with `warmMax` above it, the processes asked
   * for (taken, or missed on an empty pool) in the last {@link DEMAND_WINDOW_MS}, within
   * [`warm`, `warmMax`], grown past `warm` by at most the node's free capacity slots.
   */
  get target(): number {
    const { warm, warmMax } = this.task;
    if (warmMax <= warm) return warm;
    this.forgetOldTakes();
    const wanted = Math.min(warmMax, this.takes.length);
    const room = Math.max(0, this.options.room?.() ?? Infinity);
    return warm + Math.max(0, Math.min(wanted - warm, room));
  }

  /** Processes the pool may hold at most: `warmMax`. */
  get max(): number {
    return Math.max(this.task.warm, this.task.warmMax);
  }

  /** Processes waiting now. */
  get size(): number {
    return this.waiting.length;
  }

  /** Fills the pool (in the background from then on). */
  start(): void {
    this.fill();
  }

  /**
   * Hands over the oldest waiting process that is still alive (the likeliest to have its code
   * loaded), with none of the pool's listeners left on it; the caller sends it `start`.
   */
  take(): ChildProcess | undefined {
    if (this.closing) return undefined;
    // A miss is demand too: counting only hits, a pool could never grow past what it held.
    if (this.task.warmMax > this.task.warm) {
      this.takes.push(this.clock.now());
      if (this.takes.length > this.task.warmMax) this.takes.shift();
    }
    const i = this.waiting.findIndex((w) => isAlive(w.child, this.task));
    if (i < 0) {
      // The target may have grown past what is waiting; never cuts short a backoff.
      if (this.failures === 0 && this.waiting.length < this.target) this.schedule(REFILL_DELAY_MS);
      return undefined;
    }
    const [taken] = this.waiting.splice(i, 1);
    taken.release();
    this.failures = 0;
    this.schedule(REFILL_DELAY_MS);
    return taken.child;
  }

  /** Kills every waiting process and resolves once they have exited. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.clock.clearTimeout(this.timer);
      this.clock.clearTimeout(this.trimTimer);
      this.timer = undefined;
      this.trimTimer = undefined;
      const all = [...this.waiting, ...this.retiring];
      for (const w of all) killProcessGroup(w.child);
      await Promise.all(all.map((w) => w.closed));
    })();
    return this.closing;
  }

  private fill(): void {
    this.timer = undefined;
    // Every missing process at once: they load in parallel, so a burst's refill costs one load time.
    const target = this.target;
    let started = 0;
    while (!this.closing && this.waiting.length < target) {
      if (!this.options.mayStart()) return this.schedule(FD_RETRY_MS);
      if (started++ === (this.options.batch ?? Infinity)) return this.schedule(REFILL_DELAY_MS);
      try {
        this.waiting.push(this.spawnOne());
      } catch (err) {
        return this.failed({ err });
      }
    }
    this.scheduleTrim();
  }

  private forgetOldTakes(): void {
    const since = this.clock.now() - DEMAND_WINDOW_MS;
    while (this.takes.length > 0 && this.takes[0] <= since) this.takes.shift();
  }

  /** Looks again at the pool's size when its oldest counted take leaves the window. */
  private scheduleTrim(): void {
    if (this.closing || this.trimTimer !== undefined || this.waiting.length <= this.task.warm) return;
    this.forgetOldTakes();
    const delay = this.takes.length > 0 ? this.takes[0] + DEMAND_WINDOW_MS - this.clock.now() : 0;
    this.trimTimer = this.clock.setTimeout(() => this.trim(), delay);
  }

  /** Ends the processes above the target, newest first (the least likely to have loaded). */
  private trim(): void {
    this.trimTimer = undefined;
    if (this.closing) return;
    const target = this.target;
    while (this.waiting.length > target) {
      const extra = this.waiting.pop()!;
      extra.retired = true;
      this.retiring.add(extra);
      void extra.closed.then(() => this.retiring.delete(extra));
      killProcessGroup(extra.child);
    }
    this.scheduleTrim();
  }

  /** Runs `fill` in `delayMs`, unless it is due sooner already. */
  private schedule(delayMs: number): void {
    const at = this.clock.now() + delayMs;
    if (this.closing || (this.timer !== undefined && this.timerAt <= at)) return;
    this.clock.clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = this.clock.setTimeout(() => this.fill(), delayMs);
  }

  private spawnOne(): Waiting {
    const child = spawnInstanceProcess(this.task, null, this.options.cwd);
    const lines: string[] = [];
    const streams = [child.stdout, child.stderr].filter((s) => s !== null);
    const splitters = streams.map((stream) => {
      const source = stream === child.stdout ? "stdout" : "stderr";
      const splitter = new LineSplitter({
        maxLineLength: MAX_LINE,
        onLine: (line) => {
          lines.push(line);
          if (lines.length > DEATH_NOTE_LINES) lines.shift();
          // Output before `start` belongs to no instance yet: it goes to the node's log.
          this.logger.info({ source, pid: child.pid, warm: true }, line);
        },
        onOversized: (length) => lines.push(`[line of ${length}+ characters dropped]`),
      });
      const onData = (chunk: Buffer) => splitter.push(chunk);
      const onEnd = () => splitter.end();
      stream.on("data", onData);
      stream.on("end", onEnd);
      return { stream, onData, onEnd };
    });
    const onError = (err: Error) => lines.push(err.message);
    let resolveClosed!: () => void;
    const waiting: Waiting = {
      child,
      startedAt: this.clock.now(),
      lines,
      retired: false,
      closed: new Promise((resolve) => (resolveClosed = resolve)),
      release() {
        for (const { stream, onData, onEnd } of splitters) {
          stream.off("data", onData);
          stream.off("end", onEnd);
        }
        child.off("error", onError);
        child.off("close", onClose);
      },
    };
    const onClose = (code: number | null, signal: NodeJS.Signals | null) => {
      waiting.release();
      resolveClosed();
      const i = this.waiting.indexOf(waiting);
      if (i >= 0) this.waiting.splice(i, 1);
      if (this.closing || waiting.retired) return;
      if (this.clock.now() - waiting.startedAt >= STABLE_MS) this.failures = 0;
      this.failed({ pid: child.pid, code, signal, lastLines: lines });
    };
    child.on("error", onError);
    child.on("close", onClose);
    return waiting;
  }

  /** A process could not start or died waiting: logged once per streak, replaced after a backoff. */
  private failed(details: Record<string, unknown>): void {
    this.failures++;
    const retryInMs = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.failures - 1));
    const fields = { ...details, failuresInARow: this.failures, retryInMs };
    // Once per streak: a task whose process cannot start must not fill the log either.
    if (this.failures === 1) this.logger.warn(fields, "a warm process could not start or ended while it waited for a launch; replacing it, with a backoff while they keep ending");
    else this.logger.debug(fields, "a warm process could not start or ended while it waited for a launch");
    this.schedule(retryInMs);
  }
}

/** True while `child` can still be sent `start`. */
function isAlive(child: ChildProcess, task: TaskConfig): boolean {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return false;
  return task.kind !== "module" || child.connected;
}

/** What a node's warm pools need from it. */
export interface WarmPoolsOptions {
  /** Every task the node offers; those with `warm` > 0 get a pool. */
  tasks: Iterable<TaskConfig>;
  cwd: string;
  logger: Logger;
  mayStart(): boolean;
  /** Free capacity slots of the node: bounds each pool's growth past `warm`. */
  room?(): number;
  /** Processes one refill starts at most: the node's launchConcurrency. */
  batch?: number;
}

/** A node's warm pools, one per offered task with `warm` > 0. */
export class WarmPools {
  private readonly pools = new Map<string, WarmPool>();

  constructor(options: WarmPoolsOptions) {
    for (const task of options.tasks) {
      if (task.warm === 0) continue;
      this.pools.set(
        task.name,
        new WarmPool({ task, cwd: options.cwd, logger: options.logger.child({ task: task.name }), mayStart: () => options.mayStart(), room: () => options.room?.() ?? Infinity, batch: options.batch }),
      );
    }
  }

  /** Processes the pools hold now when full, all together. */
  get target(): number {
    return [...this.pools.values()].reduce((sum, pool) => sum + pool.target, 0);
  }

  /** Processes the pools may hold at most, all together (each grown to its `warmMax`). */
  get max(): number {
    return [...this.pools.values()].reduce((sum, pool) => sum + pool.max, 0);
  }

  /** Per task: processes waiting now. */
  counts(): Record<string, number> {
    return Object.fromEntries([...this.pools].map(([task, pool]) => [task, pool.size]));
  }

  /** Fills every pool. */
  start(): void {
    for (const pool of this.pools.values()) pool.start();
  }

  /** A waiting process of `task`, if its pool has one. */
  take(task: TaskConfig): ChildProcess | undefined {
    return this.pools.get(task.name)?.take();
  }

  /** Kills every waiting process; resolves once they have exited. Idempotent. */
  async close(): Promise<void> {
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
  }
}
