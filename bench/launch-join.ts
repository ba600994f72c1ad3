/**
 * Launch-and-join benchmark: how long a client waits from sending its launch until it is a member
 * of the new instance, launching with `"join": true` (the node joins it as the service becomes
 * ready, one round trip) against `launch`, then `join` once `launched` arrived (two round trips),
 * in the same run, alternating, on a task with a warm pool so that the fork does not drown the
 * difference.
 *
 *   node dist/bench/launch-join.js   (sizes: BENCH_JOIN_LAUNCHES, BENCH_JOIN_SETTLE_MS)
 */
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { startServman, type ServmanProcess } from "./lib/child-processes.js";
import { sleep } from "./lib/concurrency.js";
import { envInt } from "./lib/env.js";
import { stopAll } from "./lib/launch-client.js";
import { processesBelow, stopAndCheck } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { ECHO_SERVICE } from "./lib/paths.js";
import { startRedis } from "./lib/redis.js";
import { metric, soloMetric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { summarize } from "./lib/stats.js";
import { ServmanWire } from "./lib/wire-client.js";

const SEQ = envInt("BENCH_JOIN_LAUNCHES", 30);
/** Quiet time before each launch, once the pool is full again. */
const SETTLE_MS = envInt("BENCH_JOIN_SETTLE_MS", 300, 0);
const WARMUP = 2;
const POOL = 2;
const TASK = "echo-warm";

/** Waits until `expected` echo processes run below the server (the pool is full), then SETTLE_MS. */
async function quiet(serverPid: number, expected: number): Promise<void> {
  const end = Date.now() + 60_000;
  while (processesBelow(serverPid).filter((p) => p.cmd.includes(ECHO_SERVICE)).length !== expected) {
    if (Date.now() > end) throw new Error(`expected ${expected} service processes below servman`);
    await sleep(10);
  }
  await sleep(SETTLE_MS);
}

await runBenchmark("launch-join", "Launch and join: create+join latency with launch join:true against launch then join", async (ctx: BenchContext) => {
  ctx.params = { sequential: SEQ, pool: POOL, settleMs: SETTLE_MS, warmup: WARMUP };
  ctx.notes.push(`one at a time, alternating launch {join:true} and launch-then-join, task ${TASK} (warm: ${POOL}); each after the pool is full and ${SETTLE_MS} ms of quiet`);
  const redis = await startRedis();
  const config = writeBenchConfig({ redisUrl: redis.url, capacity: 8, tasks: { [TASK]: { module: ECHO_SERVICE, warm: POOL } } });
  let server: ServmanProcess | undefined;
  let client: ServmanWire | undefined;
  try {
    server = await startServman(["start", "--config", config.path, "--port", "0"]);
    client = await ServmanWire.connect(server.url!);
    const oneTrip: number[] = [];
    const twoTrips: number[] = [];
    let joined = 0;
    for (let i = 0; i < WARMUP + SEQ; i++) {
      await quiet(server.pid, POOL);
      let start = performance.now();
      const a = await client.request({ type: "launch", task: TASK, join: true }, 60_000);
      const oneMs = performance.now() - start;
      await quiet(server.pid, POOL + 1);
      start = performance.now();
      const b = await client.request({ type: "launch", task: TASK }, 60_000);
      await client.request({ type: "join", instance: b.instance }, 60_000);
      const twoMs = performance.now() - start;
      // Stopped outside the timing: the joins per connection stay bounded, the pool alone runs.
      await stopAll(client, [String(a.instance), String(b.instance)]);
      if (i < WARMUP) continue;
      if (a.joined === true) joined++;
      oneTrip.push(oneMs);
      twoTrips.push(twoMs);
    }
    const one = summarize(oneTrip);
    const two = summarize(twoTrips);
    // Paired: each launch-then-join against the join:true launch just before it, same conditions.
    const saved = summarize(twoTrips.map((t, i) => t - oneTrip[i])).p50Ms;
    say(`  create+join p50: launch join:true ${one.p50Ms} ms (p99 ${one.p99Ms}); launch then join ${two.p50Ms} ms (p99 ${two.p99Ms}); paired saving p50 ${saved} ms`);
    ctx.check("every launch with join:true answered joined:true", joined === SEQ, `${joined} of ${SEQ}`);
    ctx.floor = { launchThenJoin: two };
    ctx.servman = { launchJoin: one };
    ctx.metrics.push(
      metric("createJoinP50", "create+join p50: launch join:true vs launch then join, same run", "ms", "lower", one.p50Ms, two.p50Ms, { maxRatio: 1 }),
      metric("createJoinP99", "create+join p99: launch join:true vs launch then join, same run", "ms", "lower", one.p99Ms, two.p99Ms),
      soloMetric("savedP50", "time saved per create+join, p50 of pairs (launch then join minus launch join:true)", "ms", "higher", saved),
    );
  } finally {
    await client?.close();
    if (server) await stopAndCheck(ctx, "servman stopped cleanly and left no process", server, true);
    config.remove();
    await redis.stop();
  }
});
