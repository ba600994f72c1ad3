/**
 * Warm launch benchmark: launch-to-ready latency of a task with a warm pool (`warm: N`), whose
 * launches adopt a process already forked and waiting for `start`, against the launch
 * benchmark's floor (a raw `fork()` of the same service until its first IPC message,
 * bench/servers/forker.ts), with cold Servman launches of the same service in the same run.
 *
 * Launches go one at a time, alternating floor, cold and warm. Before each one the machine is
 * quiet: the pool is full again and its newest process has had time to load (a launch that is
 * not part of a burst finds it so). A burst larger than the pool falls back to cold forks, which
 * the launch benchmark measures.
 *
 * Then bursts: BENCH_WARM_ROUNDS rounds of BENCH_WARM_BURST launches back to back (each sent when
 * the previous one is ready), 1 s apart, of a second task with `warm: POOL` and
 * `warmMax: BENCH_WARM_MAX` (default POOL: a fixed pool). With warmMax above the pool, the first
 * round grows the pool and the later ones find it grown.
 *
 *   node dist/bench/launch-warm.js   (sizes: BENCH_WARM_LAUNCHES, BENCH_WARM_POOL, BENCH_WARM_SETTLE_MS,
 *                                     BENCH_WARM_BURST, BENCH_WARM_ROUNDS, BENCH_WARM_MAX)
 */
import { readFileSync } from "node:fs";
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { startScript, startServman, type ScriptProcess, type ServmanProcess } from "./lib/child-processes.js";
import { sleep } from "./lib/concurrency.js";
import { envInt } from "./lib/env.js";
import { breakdown, launchOne, type LaunchTrace } from "./lib/launch-client.js";
import { processesBelow, stopAndCheck } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { ECHO_SERVICE } from "./lib/paths.js";
import { startRedis } from "./lib/redis.js";
import { metric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { summarize } from "./lib/stats.js";
import { ServmanWire } from "./lib/wire-client.js";

const SEQ = envInt("BENCH_WARM_LAUNCHES", 30);
const POOL = envInt("BENCH_WARM_POOL", 2);
/** Quiet time before each launch, once the pool is full: longer than a fork takes to load here. */
const SETTLE_MS = envInt("BENCH_WARM_SETTLE_MS", 300, 0);
const BURST = envInt("BENCH_WARM_BURST", 6);
const ROUNDS = envInt("BENCH_WARM_ROUNDS", 3);
const MAX = Math.max(POOL, envInt("BENCH_WARM_MAX", POOL, 0));
const WARMUP = 2;
const WARM_TASK = "echo-warm";
const BURST_TASK = "echo-burst";

/** The task a process was started for (SERVMAN_TASK in its environment), "" if unknown. */
function taskOf(pid: number): string {
  try {
    const env = readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
    return env.find((e) => e.startsWith("SERVMAN_TASK="))?.slice("SERVMAN_TASK=".length) ?? "";
  } catch {
    return "";
  }
}

/** Pids of the echo service processes below the server: its instances and its warm pool. */
function servicePids(serverPid: number): number[] {
  return processesBelow(serverPid)
    .filter((p) => p.cmd.includes(ECHO_SERVICE))
    .map((p) => p.pid)
    .filter((pid) => taskOf(pid) !== BURST_TASK);
}

/** Waits until `expected` service processes run below the server (the pool is full), then SETTLE_MS. */
async function quiet(serverPid: number, expected: number): Promise<number[]> {
  const end = Date.now() + 60_000;
  for (;;) {
    const pids = servicePids(serverPid);
    if (pids.length === expected) {
      await sleep(SETTLE_MS);
      return pids;
    }
    if (Date.now() > end) throw new Error(`expected ${expected} service processes below servman, found ${pids.length}`);
    await sleep(10);
  }
}

await runBenchmark("launch-warm", "Warm launch: launch-to-ready latency with a warm pool, against the cold fork floor", async (ctx: BenchContext) => {
  ctx.params = { sequential: SEQ, pool: POOL, settleMs: SETTLE_MS, warmup: WARMUP, burst: BURST, rounds: ROUNDS, warmMax: MAX };
  ctx.notes.push(
    `launches one at a time, alternating floor fork, cold launch (task echo) and warm launch (task ${WARM_TASK}, warm: ${POOL}); each after the pool is full and ${SETTLE_MS} ms of quiet`,
  );
  const redis = await startRedis();
  const config = writeBenchConfig({
    redisUrl: redis.url,
    capacity: 2 * (WARMUP + SEQ) + BURST * ROUNDS + 10,
    tasks: { [WARM_TASK]: { module: ECHO_SERVICE, warm: POOL }, [BURST_TASK]: { module: ECHO_SERVICE, warm: POOL, warmMax: MAX } },
  });
  let forker: ScriptProcess<unknown> | undefined;
  let server: ServmanProcess | undefined;
  let client: ServmanWire | undefined;
  try {
    forker = await startScript("forker", [ECHO_SERVICE]);
    server = await startServman(["start", "--config", config.path, "--port", "0"]);
    client = await ServmanWire.connect(server.url!);
    const serverPid = server.pid;
    // Instances stay up until the end (the breakdown reads their registry records).
    let live = 0;
    const floor: number[] = [];
    const cold: LaunchTrace[] = [];
    const warm: LaunchTrace[] = [];
    let adopted = 0;
    say(`${WARMUP} warm-up rounds, then ${SEQ} measured: floor fork, cold launch, warm launch (pool of ${POOL})`);
    for (let i = 0; i < WARMUP + SEQ; i++) {
      const measured = i >= WARMUP;
      await quiet(serverPid, POOL + live);
      const forked = (await forker.request<{ latencies: number[] }>("launch", { count: 1, concurrency: 1 })).latencies;
      await forker.request("killAll");
      await quiet(serverPid, POOL + live);
      const c = await launchOne(client, "echo");
      live++;
      const waiting = await quiet(serverPid, POOL + live);
      const w = await launchOne(client, WARM_TASK);
      live++;
      const pid = Number(await redis.client.hget(`{${config.prefix}}:instance:${w.instance}`, "pid"));
      if (!measured) continue;
      floor.push(...forked);
      cold.push(c);
      warm.push(w);
      if (waiting.includes(pid)) adopted++;
    }
    // Bursts: back to back, the pool cannot refill between two launches of a round.
    const rounds: number[][] = [];
    for (let r = 0; r < ROUNDS; r++) {
      if (r > 0) await sleep(1_000);
      const latencies: number[] = [];
      for (let i = 0; i < BURST; i++) latencies.push((await launchOne(client, BURST_TASK)).latencyMs);
      rounds.push(latencies);
    }
    const burstFirst = summarize(rounds[0]);
    const burstLater = summarize(rounds.slice(1).flat());
    say(`  bursts of ${BURST} back to back (warm ${POOL}, warmMax ${MAX}): round 1 p50 ${burstFirst.p50Ms} ms; rounds 2-${ROUNDS} p50 ${burstLater.p50Ms}, p99 ${burstLater.p99Ms}`);
    for (const [r, latencies] of rounds.entries()) say(`    round ${r + 1}: ${latencies.map((l) => Math.round(l)).join(", ")} ms`);
    const floorSeq = summarize(floor);
    const coldSeq = summarize(cold.map((t) => t.latencyMs));
    const warmSeq = summarize(warm.map((t) => t.latencyMs));
    say(`  floor p50 ${floorSeq.p50Ms} ms, p99 ${floorSeq.p99Ms}; cold p50 ${coldSeq.p50Ms}, p99 ${coldSeq.p99Ms}; warm p50 ${warmSeq.p50Ms}, p99 ${warmSeq.p99Ms}`);
    const warmBreakdown = await breakdown(redis.url, config.prefix, warm, WARM_TASK);
    const coldBreakdown = await breakdown(redis.url, config.prefix, cold, "echo");
    say(`  where a warm launch's time goes (p50 ms): ${JSON.stringify(warmBreakdown)}`);
    ctx.check("every measured warm launch adopted a waiting process", adopted === SEQ, `${adopted} of ${SEQ}`);
    ctx.floor = { sequential: floorSeq };
    ctx.servman = { warm: warmSeq, cold: coldSeq, warmBreakdownP50Ms: warmBreakdown, coldBreakdownP50Ms: coldBreakdown, burstFirstRound: burstFirst, burstLaterRounds: burstLater };
    ctx.metrics.push(
      metric("warmP50", "warm launch-to-ready p50, one at a time", "ms", "lower", warmSeq.p50Ms, floorSeq.p50Ms, { below: 20 }),
      metric("warmP99", "warm launch-to-ready p99, one at a time", "ms", "lower", warmSeq.p99Ms, floorSeq.p99Ms),
      metric("coldP50", "cold launch-to-ready p50, same run", "ms", "lower", coldSeq.p50Ms, floorSeq.p50Ms),
      metric("coldP99", "cold launch-to-ready p99, same run", "ms", "lower", coldSeq.p99Ms, floorSeq.p99Ms),
      metric("burstLaterP50", `back-to-back launch p50, bursts of ${BURST} after the first (warm ${POOL}, warmMax ${MAX})`, "ms", "lower", burstLater.p50Ms, floorSeq.p50Ms),
      metric("burstLaterP99", `back-to-back launch p99, bursts of ${BURST} after the first (warm ${POOL}, warmMax ${MAX})`, "ms", "lower", burstLater.p99Ms, floorSeq.p99Ms),
    );
    const b = warmBreakdown;
    ctx.notes.push(
      `warm launch p50 breakdown (ms): client -> enqueued ${b["client -> enqueued"]}, queue wait ${b["queue wait"]}, ` +
        `picked up -> ready ${b["picked up -> ready"]} (cold: ${coldBreakdown["picked up -> ready"]}), ready -> client ${b["ready -> client"]}`,
    );
  } finally {
    await client?.close();
    if (forker) await stopAndCheck(ctx, "floor forker left no process", forker, false);
    if (server) await stopAndCheck(ctx, "servman stopped cleanly and left no process (warm pool included)", server, true);
    config.remove();
    await redis.stop();
  }
});
