/**
 * A warm pool's refills and backoff (nodes/warm-pool.ts) on a manual clock: the processes are real
 * (forked fixtures, no Redis), the waits between refills are not waited for but stepped through.
 */
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterEach, describe, it } from "node:test";
import { pino } from "pino";
import type { TaskConfig } from "../src/config/options.js";
import { killProcessGroup } from "../nodes/spawn-process.js";
import { WarmPool } from "../nodes/warm-pool.js";
import { ManualClock } from "./helpers/manual-clock.js";
import { descendants, eventually } from "./helpers/processes.js";

const ECHO = fileURLToPath(new URL("./fixtures/echo-service.js", import.meta.url));
const EXIT_AT_LOAD = fileURLToPath(new URL("./fixtures/exit-at-load.js", import.meta.url));

function task(module: string, warm: number, warmMax = warm): TaskConfig {
  return {
    name: "t",
    kind: "module",
    module,
    restart: "never",
    maxRestarts: 0,
    attempts: 1,
    readyTimeoutMs: 15_000,
    livenessTimeoutMs: 0,
    relaunch: false,
    warm,
    warmMax,
    maxQueuedBytes: 1 << 20,
    env: {},
    isolation: "process",
    instancesPerProcess: 100,
  };
}

describe("warm pool refills", () => {
  const pools: WarmPool[] = [];
  const taken: ChildProcess[] = [];
  function pool(module: string, warm: number, mayStart = () => true, more: { warmMax?: number; room?: () => number; batch?: number } = {}): { pool: WarmPool; clock: ManualClock } {
    const clock = new ManualClock();
    const p = new WarmPool({ task: task(module, warm, more.warmMax), cwd: process.cwd(), logger: pino({ level: "silent" }), mayStart, room: more.room, batch: more.batch, clock });
    pools.push(p);
    return { pool: p, clock };
  }
  /** Pids of the pool's waiting processes (this test's own children). */
  function waitingPids(): number[] {
    return descendants()
      .filter((p) => p.cmd.includes("echo-service"))
      .map((p) => p.pid)
      .filter((pid) => !taken.some((c) => c.pid === pid));
  }

  afterEach(async () => {
    await Promise.all(pools.splice(0).map((p) => p.close()));
    for (const child of taken.splice(0)) killProcessGroup(child);
    await eventually(() => descendants().length === 0, "every process to exit");
  });

  it("fills at start, and refills 50 ms after a take, once for takes in a row", () => {
    const { pool: p, clock } = pool(ECHO, 2);
    p.start();
    assert.equal(p.size, 2);
    assert.deepEqual(clock.pending(), [], "full: nothing scheduled");
    taken.push(p.take()!);
    assert.equal(p.size, 1);
    assert.deepEqual(clock.pending(), [50]);
    clock.advance(30);
    taken.push(p.take()!);
    assert.deepEqual(clock.pending(), [20], "the refill already due sooner is kept");
    clock.advance(19);
    assert.equal(p.size, 0);
    clock.advance(1);
    assert.equal(p.size, 2, "one refill fills the pool");
    assert.deepEqual(clock.pending(), []);
  });

  it("a process that cannot start is replaced after a backoff that doubles while they keep dying", async () => {
    const { pool: p, clock } = pool(EXIT_AT_LOAD, 1);
    p.start();
    const delays: number[] = [];
    for (let death = 0; death < 5; death++) {
      await eventually(() => p.size === 0 && clock.pending().length === 1, `death ${death + 1} to be seen`);
      const [delay] = clock.pending();
      delays.push(delay);
      clock.advance(delay - 1);
      assert.equal(p.size, 0, "no replacement before the backoff ends");
      clock.advance(1);
      assert.equal(p.size, 1, "replaced when it ends");
    }
    assert.deepEqual(delays, [100, 200, 400, 800, 1600]);
  });

  it("a process that waited 10 s before dying, or a take, ends the streak: the backoff starts at 100 ms again", async () => {
    const { pool: p, clock } = pool(ECHO, 1);
    p.start();
    const killWaiting = async (): Promise<number> => {
      await eventually(() => waitingPids().length === 1, "one waiting process");
      process.kill(waitingPids()[0], "SIGKILL");
      await eventually(() => p.size === 0 && clock.pending().length === 1, "the death to be seen");
      const [delay] = clock.pending();
      clock.advance(delay);
      return delay;
    };
    assert.equal(await killWaiting(), 100);
    assert.equal(await killWaiting(), 200);
    clock.advance(10_000);
    assert.equal(await killWaiting(), 100, "it had waited 10 s: it did start");
    assert.equal(await killWaiting(), 200);
    taken.push(p.take()!);
    clock.advance(50);
    assert.equal(await killWaiting(), 100, "a take ends the streak too");
  });

  it("near the open-file limit starts nothing, and looks again every second", () => {
    let may = false;
    const { pool: p, clock } = pool(ECHO, 2, () => may);
    p.start();
    assert.equal(p.size, 0);
    assert.deepEqual(clock.pending(), [1000]);
    clock.advance(1000);
    assert.deepEqual(clock.pending(), [1000], "still near it: another look in a second");
    may = true;
    clock.advance(1000);
    assert.equal(p.size, 2);
    assert.deepEqual(clock.pending(), []);
  });

  it("a burst's refill starts every missing process at once", () => {
    const { pool: p, clock } = pool(ECHO, 3);
    p.start();
    for (let i = 0; i < 3; i++) taken.push(p.take()!);
    assert.equal(p.size, 0);
    assert.equal(p.take(), undefined, "a miss on an empty pool");
    assert.deepEqual(clock.pending(), [50], "one refill for the whole burst");
    clock.advance(50);
    assert.equal(p.size, 3, "the three missing processes started in one go");
    assert.deepEqual(clock.pending(), [], "warmMax = warm: nothing to shrink later");
  });

  it("with warmMax, the target grows with the launches of the last 10 s, and shrinks back as they age out", async () => {
    const { pool: p, clock } = pool(ECHO, 1, () => true, { warmMax: 4 });
    p.start();
    assert.deepEqual([p.size, p.target], [1, 1]);
    // A burst of 5: one hit, four misses (served cold by the node); demand 5, capped at warmMax 4.
    const burst = [1, 2, 3, 4, 5].map(() => p.take());
    taken.push(...burst.filter((c) => c !== undefined));
    assert.equal(burst.filter((c) => c !== undefined).length, 1);
    assert.equal(p.target, 4);
    assert.deepEqual(clock.pending(), [50]);
    clock.advance(50);
    assert.equal(p.size, 4, "grown to warmMax in one refill");
    assert.deepEqual(clock.pending(), [9950], "a look at the size when the burst leaves the window");

    clock.advance(4950); // t = 5 s: two more launches, both served warm
    taken.push(p.take()!, p.take()!);
    assert.equal(p.target, 4, "7 launches in the window, still capped at 4");
    clock.advance(50);
    assert.equal(p.size, 4);

    clock.advance(4950); // t = 10 s: the burst left the window, the two of t = 5 s remain
    assert.deepEqual([p.target, p.size], [2, 2], "shrunk to the demand left");
    clock.advance(5000); // t = 15 s: no launch left in the window
    assert.deepEqual([p.target, p.size], [1, 1], "back to warm");
    assert.deepEqual(clock.pending(), []);
    await eventually(() => waitingPids().length === 1, "the ended extra processes to exit");
  });

  it("with warmMax, growth past warm is bounded by the node's free capacity slots", () => {
    let room = 2;
    const { pool: p, clock } = pool(ECHO, 1, () => true, { warmMax: 6, room: () => room });
    p.start();
    for (let i = 0; i < 6; i++) {
      const c = p.take();
      if (c) taken.push(c);
    }
    assert.equal(p.target, 3, "warm 1 + 2 free slots, although 6 were asked for");
    clock.advance(50);
    assert.equal(p.size, 3);
    room = 0;
    clock.advance(10_000);
    assert.equal(p.size, 1, "no free slot: back to warm");
  });

  it("a refill starts at most `batch` processes (the node's launchConcurrency), the rest 50 ms later", () => {
    const { pool: p, clock } = pool(ECHO, 1, () => true, { warmMax: 5, batch: 2 });
    p.start();
    for (let i = 0; i < 5; i++) {
      const c = p.take();
      if (c) taken.push(c);
    }
    assert.equal(p.target, 5);
    const sizes: number[] = [];
    for (let i = 0; i < 3; i++) {
      clock.advance(50);
      sizes.push(p.size);
    }
    assert.deepEqual(sizes, [2, 4, 5]);
  });

  it("misses on a pool waiting out a backoff do not cut the backoff short", async () => {
    const { pool: p, clock } = pool(EXIT_AT_LOAD, 1, () => true, { warmMax: 3 });
    p.start();
    await eventually(() => p.size === 0 && clock.pending().length === 1, "the death to be seen");
    assert.deepEqual(clock.pending(), [100]);
    assert.equal(p.take(), undefined);
    assert.deepEqual(clock.pending(), [100]);
  });

  it("close kills the waiting processes and cancels the pending refill", async () => {
    const { pool: p, clock } = pool(ECHO, 2);
    p.start();
    taken.push(p.take()!);
    assert.deepEqual(clock.pending(), [50]);
    await p.close();
    assert.deepEqual(clock.pending(), []);
    assert.deepEqual(waitingPids(), []);
    assert.equal(p.take(), undefined);
  });
});
