/**
 * Launch benchmark: launch-to-ready latency and sustained launches per second, through the whole
 * path (client -> gateway -> reservation + BullMQ -> node -> fork -> `ready` -> back), against
 * the floor: a raw `fork()` of the same service file until its first IPC message
 * (bench/servers/forker.ts). Sequential launches also get a breakdown of where the time goes,
 * from the BullMQ job's timestamps and the registry record.
 *
 *   node dist/bench/launch.js   (sizes: BENCH_LAUNCH_SEQ, BENCH_LAUNCHES, BENCH_LAUNCH_CONCURRENCY)
 */
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { startScript, startServman, type ScriptProcess, type ServmanProcess } from "./lib/child-processes.js";
import { mapLimit } from "./lib/concurrency.js";
import { cpuTimeMs } from "./lib/cpu-time.js";
import { envInt } from "./lib/env.js";
import { breakdown, launchOne, stopAll, type LaunchTrace } from "./lib/launch-client.js";
import { stopAndCheck } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { ECHO_SERVICE } from "./lib/paths.js";
import { startRedis } from "./lib/redis.js";
import { metric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { round, summarize, type LatencySummary } from "./lib/stats.js";
import { ServmanWire } from "./lib/wire-client.js";

const SEQ = envInt("BENCH_LAUNCH_SEQ", 20);
const LAUNCHES = envInt("BENCH_LAUNCHES", 100);
const CONCURRENCY = envInt("BENCH_LAUNCH_CONCURRENCY", 8);
const WARMUP = 2;

/** What one side measured. */
interface LaunchFigures {
  sequential: LatencySummary;
  concurrent: LatencySummary;
  launchesPerSecond: number;
  concurrentDurationMs: number;
}

type Launched = { latencies: number[]; durationMs: number };

await runBenchmark("launch", "Launch: launch-to-ready latency and sustained launches per second", async (ctx: BenchContext) => {
  ctx.params = { sequential: SEQ, launches: LAUNCHES, concurrency: CONCURRENCY, warmup: WARMUP };
  ctx.notes.push("sequential launches alternate one floor fork, one Servman launch; the concurrent phases run floor first, then Servman");
  const redis = await startRedis();
  const config = writeBenchConfig({ redisUrl: redis.url, capacity: WARMUP + SEQ + LAUNCHES + 10 });
  let forker: ScriptProcess<unknown> | undefined;
  let server: ServmanProcess | undefined;
  let client: ServmanWire | undefined;
  try {
    say("floor: raw fork() of the echo service until its first IPC message (bench/servers/forker.ts)");
    forker = await startScript("forker", [ECHO_SERVICE]);
    say("servman: servman start, launches through the gateway (node launchConcurrency: Servman's default)");
    server = await startServman(["start", "--config", config.path, "--port", "0"]);
    client = await ServmanWire.connect(server.url!);
    const fork = (count: number, concurrency: number) => forker!.request<Launched>("launch", { count, concurrency });

    say(`warm-up: ${WARMUP} launches each`);
    await fork(WARMUP, 1);
    await forker.request("killAll");
    const warm = await mapLimit(WARMUP, 1, () => launchOne(client!));
    await stopAll(
      client,
      warm.map((t) => t.instance),
    );

    say(`sequential: ${SEQ} launches each, alternating`);
    const floorSeq: number[] = [];
    const traces: LaunchTrace[] = [];
    for (let i = 0; i < SEQ; i++) {
      floorSeq.push(...(await fork(1, 1)).latencies);
      traces.push(await launchOne(client));
    }
    await forker.request("killAll");
    const floorSequential = summarize(floorSeq);
    const servmanSequential = summarize(traces.map((t) => t.latencyMs));
    say(`  floor p50 ${floorSequential.p50Ms} ms, p99 ${floorSequential.p99Ms} ms; servman p50 ${servmanSequential.p50Ms} ms, p99 ${servmanSequential.p99Ms} ms`);
    const breakdownP50Ms = await breakdown(redis.url, config.prefix, traces);
    say(`  where a sequential Servman launch's time goes (p50 ms): ${JSON.stringify(breakdownP50Ms)}`);
    await stopAll(
      client,
      traces.map((t) => t.instance),
    );

    say(`concurrent: ${LAUNCHES} launches, ${CONCURRENCY} at a time`);
    // CPU of the launching process itself (not its children) per launch: Servman's own overhead.
    const perLaunch = (ms: number) => round(ms / LAUNCHES, 2);
    let cpuBefore = cpuTimeMs(forker.pid);
    const conc = await fork(LAUNCHES, CONCURRENCY);
    const floorCpuMs = perLaunch(cpuTimeMs(forker.pid) - cpuBefore);
    await forker.request("killAll");
    const floorConcurrent = summarize(conc.latencies);
    const floorRate = round((LAUNCHES * 1000) / conc.durationMs, 1);
    say(`  floor: ${floorRate}/s, p50 ${floorConcurrent.p50Ms} ms, p99 ${floorConcurrent.p99Ms} ms`);
    cpuBefore = cpuTimeMs(server.pid);
    const redisBefore = cpuTimeMs(redis.pid);
    const start = performance.now();
    const launched = await mapLimit(LAUNCHES, CONCURRENCY, () => launchOne(client!));
    const durationMs = performance.now() - start;
    const servmanCpuMs = perLaunch(cpuTimeMs(server.pid) - cpuBefore);
    const redisCpuMs = perLaunch(cpuTimeMs(redis.pid) - redisBefore);
    const servmanConcurrent = summarize(launched.map((t) => t.latencyMs));
    const servmanRate = round((LAUNCHES * 1000) / durationMs, 1);
    say(`  servman: ${servmanRate}/s, p50 ${servmanConcurrent.p50Ms} ms, p99 ${servmanConcurrent.p99Ms} ms`);
    say(`  CPU ms per launch in the launching process: servman gateway+node ${servmanCpuMs} (+ redis ${redisCpuMs}), floor forker ${floorCpuMs}`);
    await stopAll(
      client,
      launched.map((t) => t.instance),
    );

    const floor: LaunchFigures = { sequential: floorSequential, concurrent: floorConcurrent, launchesPerSecond: floorRate, concurrentDurationMs: Math.round(conc.durationMs) };
    const servman: LaunchFigures = { sequential: servmanSequential, concurrent: servmanConcurrent, launchesPerSecond: servmanRate, concurrentDurationMs: Math.round(durationMs) };
    ctx.floor = { ...floor, launcherCpuMsPerLaunch: floorCpuMs };
    ctx.servman = { ...servman, breakdownP50Ms, launcherCpuMsPerLaunch: servmanCpuMs, redisCpuMsPerLaunch: redisCpuMs };
    ctx.metrics.push(
      metric("p50", "launch-to-ready p50, one at a time", "ms", "lower", servman.sequential.p50Ms, floor.sequential.p50Ms, { maxRatio: 1.25 }),
      metric("p99", "launch-to-ready p99, one at a time", "ms", "lower", servman.sequential.p99Ms, floor.sequential.p99Ms),
      metric("throughput", `sustained launches, ${CONCURRENCY} at a time`, "launches/s", "higher", servman.launchesPerSecond, floor.launchesPerSecond),
      metric("concurrentP50", `launch-to-ready p50, ${CONCURRENCY} at a time`, "ms", "lower", servman.concurrent.p50Ms, floor.concurrent.p50Ms),
      metric("concurrentP99", `launch-to-ready p99, ${CONCURRENCY} at a time`, "ms", "lower", servman.concurrent.p99Ms, floor.concurrent.p99Ms),
      metric("launcherCpu", "CPU per launch in the launching process (node+gateway / forker)", "ms", "lower", servmanCpuMs, floorCpuMs),
    );
    const b = breakdownP50Ms;
    ctx.notes.push(
      `sequential launch p50 breakdown (ms): client -> enqueued ${b["client -> enqueued"]}, queue wait ${b["queue wait"]}, ` +
        `picked up -> ready ${b["picked up -> ready"]} (the fork floor alone: ${floor.sequential.p50Ms}), ready -> client ${b["ready -> client"]}`,
    );
  } finally {
    await client?.close();
    if (forker) await stopAndCheck(ctx, "floor forker left no process", forker, false);
    if (server) await stopAndCheck(ctx, "servman stopped cleanly and left no process", server, true);
    config.remove();
    await redis.stop();
  }
});
