/**
 * An instance's health and limits: resident memory (peak for the post-mortem, `maxMemoryMb`
 * kills), liveness (a ready process silent for `livenessTimeoutMs` is killed), `maxLifetimeMs`
 * `idleTimeoutMs` and `emptyTimeoutMs` (all three stop it). Each kill or stop says why in the
 * node's log.
 */
import type { Logger } from "pino";
import { emptyTimeoutFor, type TaskConfig } from "../src/config/options.js";
import { residentKb } from "./memory-watch.js";

/** How often memory is sampled (the first sample comes sooner, for short lives). */
const MEMORY_SAMPLE_MS = 2_000;
const FIRST_MEMORY_SAMPLE_MS = 250;

/** A process whose resident memory is sampled. */
export interface MemoryWatched {
  readonly pid: number | undefined;
}

/** What the watch needs from its instance. */
export interface WatchedInstance {
  readonly task: TaskConfig;
  /** True when a client launched it (it has an owner session): `emptyTimeoutMs` has its owned default. */
  readonly owned: boolean;
  /** True while the instance is ready (not launching, restarting, stopping or ended). */
  isReady(): boolean;
  /** Clients joined. */
  joinedCount(): number;
  /** Joins waiting for the service's answer. */
  pendingCount(): number;
  /** What runs it now, if anything (compared by identity: a restart brings another). */
  process(): MemoryWatched | undefined;
  kill(): void;
  stop(reply: null): void;
  /** One line in the instance's own log. */
  note(text: string): void;
  /** Runs `fn` after `ms` unless the instance's process ends first. */
  timer(ms: number, fn: () => void): void;
}

export class InstanceHealth {
  /** Highest resident memory seen, in KiB. */
  private peakRssKb = 0;
  /** When the service last sent anything. */
  private lastHeard = 0;
  /** True once the service has sent a heartbeat (command tasks are watched from then on). */
  private heartbeats = false;
  /** When maxLifetimeMs runs out (ms since epoch), fixed at the first ready. */
  private lifetimeEndsAt: number | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private emptyTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly instance: WatchedInstance,
    private readonly logger: Logger,
  ) {}

  get peakRssMb(): number | null {
    return this.peakRssKb > 0 ? Math.round(this.peakRssKb / 1024) : null;
  }

  /** The service sent something (any valid message counts as a sign of life). */
  heard(heartbeat: boolean): void {
    this.lastHeard = Date.now();
    if (heartbeat) this.heartbeats = true;
  }

  /**
   * A sample of the process the instance runs in, taken by someone else (its shared host, once for
   * all its instances, which also applies `maxMemoryMb` to the host): kept for the post-mortem.
   */
  sampled(kb: number): void {
    this.peakRssKb = Math.max(this.peakRssKb, kb);
  }

  /** Samples `child`'s memory until it is no longer the instance's process. */
  watchMemory(child: MemoryWatched, delayMs = FIRST_MEMORY_SAMPLE_MS): void {
    const pid = child.pid;
    const { task } = this.instance;
    if (pid === undefined) return;
    const limitKb = task.maxMemoryMb === undefined ? Infinity : task.maxMemoryMb * 1024;
    this.instance.timer(delayMs, () => {
      void residentKb(pid).then((kb) => {
        if (kb === null || this.instance.process() !== child) return;
        this.peakRssKb = Math.max(this.peakRssKb, kb);
        if (kb > limitKb) {
          this.logger.warn({ rssMb: Math.round(kb / 1024), maxMemoryMb: task.maxMemoryMb }, "instance is over maxMemoryMb; killing it");
          this.instance.note(`killed: resident memory ${Math.round(kb / 1024)} MB over maxMemoryMb ${task.maxMemoryMb}`);
          this.instance.kill();
          return;
        }
        this.watchMemory(child, MEMORY_SAMPLE_MS);
      });
    });
  }

  /** The process became ready (first start or restart): liveness, lifetime and idle clocks run. */
  armReady(): void {
    const { task } = this.instance;
    this.lastHeard = Date.now();
    this.armLivenessCheck();
    if (task.maxLifetimeMs !== undefined) {
      this.lifetimeEndsAt ??= Date.now() + task.maxLifetimeMs;
      this.instance.timer(Math.max(0, this.lifetimeEndsAt - Date.now()), () => {
        this.logger.info({ maxLifetimeMs: task.maxLifetimeMs }, "instance reached its maximum lifetime; stopping");
        this.instance.stop(null);
      });
    }
    this.armIdle();
  }

  /** Kills a ready process that has gone silent (a hung event loop, a deadlock). */
  private armLivenessCheck(): void {
    const { task } = this.instance;
    const limit = task.livenessTimeoutMs;
    if (limit === 0) return;
    this.instance.timer(Math.max(100, limit / 2), () => {
      if (!this.instance.isReady()) return;
      // Module tasks always run the SDK's heartbeat; a command task opts in by sending one.
      const watched = task.kind === "module" || this.heartbeats;
      if (watched && Date.now() - this.lastHeard > limit) {
        this.logger.warn({ livenessTimeoutMs: limit, silentMs: Date.now() - this.lastHeard }, "instance is unresponsive; killing it");
        this.instance.kill();
        return;
      }
      this.armLivenessCheck();
    });
  }

  /**
   * (Re)starts the idle and empty countdowns when no client is joined; a join cancels them. A
   * member whose connection dropped stays joined until its session ends, so it keeps them off.
   */
  armIdle(): void {
    this.cancelIdle();
    if (!this.instance.isReady() || this.instance.joinedCount() > 0) return;
    const idle = this.instance.task.idleTimeoutMs;
    if (idle !== undefined) this.idleTimer = setTimeout(() => this.idleRanOut(idle), idle);
    const empty = emptyTimeoutFor(this.instance.task, this.instance.owned);
    if (empty > 0) this.emptyTimer = setTimeout(() => this.emptyRanOut(empty), empty);
  }

  /** True when nobody is joined nor joining (a join waiting for the service's answer counts). */
  private unattended(): boolean {
    return this.instance.isReady() && this.instance.joinedCount() === 0 && this.instance.pendingCount() === 0;
  }

  private idleRanOut(idle: number): void {
    this.idleTimer = undefined;
    if (this.unattended()) {
      this.logger.info({ idleTimeoutMs: idle }, "instance idle with no client joined; stopping");
      this.instance.stop(null);
    } else if (this.instance.isReady() && this.instance.joinedCount() === 0) {
      this.idleTimer = setTimeout(() => this.idleRanOut(idle), idle);
    }
  }

  private emptyRanOut(empty: number): void {
    this.emptyTimer = undefined;
    if (this.unattended()) {
      this.logger.info({ emptyTimeoutMs: empty, owned: this.instance.owned }, "instance empty with no member; stopping");
      // In the instance's own log, so its post-mortem's last lines say why it stopped.
      this.instance.note(`stopped: empty for ${empty} ms (emptyTimeoutMs)`);
      this.instance.stop(null);
    } else if (this.instance.isReady() && this.instance.joinedCount() === 0) {
      this.emptyTimer = setTimeout(() => this.emptyRanOut(empty), empty);
    }
  }

  cancelIdle(): void {
    clearTimeout(this.idleTimer);
    clearTimeout(this.emptyTimer);
    this.idleTimer = undefined;
    this.emptyTimer = undefined;
  }
}
