/**
 * Relay benchmark: client -> gateway -> Redis -> node -> instance -> back, for Servman (`servman
 * start` in a child process, the bench echo service as a `module` task) and for the same chain
 * built from raw ws, raw ioredis pub/sub and raw Node IPC (bench/servers/floor-relay.ts).
 *
 * Two workloads, run identically on both: sequential round trips on one connection (latency),
 * and BENCH_RELAY_CLIENTS connections spread over BENCH_RELAY_INSTANCES instances, each keeping
 * BENCH_RELAY_WINDOW messages in flight (throughput). CPU time per message is recorded for each
 * process group, to show where the time goes.
 *
 *   node dist/bench/relay.js      (sizes: BENCH_RELAY_ROUNDS, _WARMUP, _CLIENTS, _INSTANCES, _WINDOW, _SECONDS)
 */
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { startScript, startServman } from "./lib/child-processes.js";
import { mapLimit } from "./lib/concurrency.js";
import { cpuDelta, cpuSnapshot, type CpuGroups, type CpuSnapshot } from "./lib/cpu-time.js";
import { envInt } from "./lib/env.js";
import { processesBelow, survivors } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { startRedis } from "./lib/redis.js";
import { pipelinedLoad, sequentialRoundTrips, type PipelinedResult } from "./lib/relay-load.js";
import { metric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { summarize, type LatencySummary } from "./lib/stats.js";
import { PlainWire, ServmanWire, type TextPipe } from "./lib/wire-client.js";

const ROUNDS = envInt("BENCH_RELAY_ROUNDS", 2000);
const WARMUP = envInt("BENCH_RELAY_WARMUP", 200, 0);
const CLIENTS = envInt("BENCH_RELAY_CLIENTS", 100);
const INSTANCES = Math.min(CLIENTS, envInt("BENCH_RELAY_INSTANCES", 10));
const WINDOW = envInt("BENCH_RELAY_WINDOW", 10);
const SECONDS = envInt("BENCH_RELAY_SECONDS", 3);
const WARMUP_MS = 1000;

/** The same client frame for both chains: a Servman `send` (the floor relays it unread). */
function sendFrame(instance: string, seq: number): string {
  return `{"type":"send","instance":"${instance}","action":"echo","data":{"seq":${seq}}}`;
}

/** What one chain measured. */
interface ChainResult {
  sequential: LatencySummary;
  pipelined: Omit<PipelinedResult, "samples"> & { latency: LatencySummary };
  /** CPU ms per process group during the measured pipelined interval. */
  cpuMs: CpuSnapshot;
  /** CPU µs per relayed message per process group. */
  cpuUsPerMessage: Record<string, number>;
}

/** Runs both workloads over `pipes` (pipes[0] is the sequential client). */
async function drive(pipes: TextPipe[], instanceOf: (client: number) => string, groups: CpuGroups): Promise<ChainResult> {
  say(`  sequential: ${WARMUP} warm-up + ${ROUNDS} round trips on one connection`);
  const seqSamples = await sequentialRoundTrips(pipes[0]!, (i) => sendFrame(instanceOf(0), i), WARMUP, ROUNDS);
  const sequential = summarize(seqSamples);
  say(`  sequential p50 ${sequential.p50Ms} ms, p99 ${sequential.p99Ms} ms`);
  say(`  pipelined: ${pipes.length} clients x window ${WINDOW}, ${WARMUP_MS} ms warm-up + ${SECONDS} s`);
  let before: CpuSnapshot = {};
  let after: CpuSnapshot = {};
  const run = await pipelinedLoad(pipes, (c, seq) => sendFrame(instanceOf(c), seq), WINDOW, WARMUP_MS, SECONDS * 1000, {
    onMeasureStart: () => (before = cpuSnapshot(groups)),
    onMeasureEnd: () => (after = cpuSnapshot(groups)),
  });
  const { samples, ...rest } = run;
  const cpuMs = cpuDelta(before, after);
  const messages = (run.messagesPerSecond * run.measuredMs) / 1000;
  const cpuUsPerMessage = Object.fromEntries(Object.entries(cpuMs).map(([k, ms]) => [k, messages > 0 ? Math.round((ms * 1000 * 10) / messages) / 10 : 0]));
  say(`  pipelined ${run.messagesPerSecond} msgs/s, lost ${run.lost}; CPU µs/msg ${JSON.stringify(cpuUsPerMessage)}`);
  return { sequential, pipelined: { ...rest, latency: summarize(samples) }, cpuMs, cpuUsPerMessage };
}

async function closeAll(pipes: TextPipe[]): Promise<void> {
  await Promise.allSettled(pipes.map((p) => p.close()));
}

async function measureFloor(ctx: BenchContext, redisUrl: string, redisPid: number): Promise<ChainResult> {
  say("floor: raw ws + ioredis pub/sub + Node IPC");
  const server = await startScript<{ url: string; pids: number[] }>("floor-relay", [redisUrl, String(INSTANCES)]);
  const pipes: TextPipe[] = [];
  try {
    const url = server.ready.url;
    pipes.push(...(await mapLimit(CLIENTS, 50, (c) => PlainWire.connect(`${url}?i=${c % INSTANCES}`, true))));
    const groups: CpuGroups = { "gateway+node": [server.pid], instances: server.ready.pids, redis: [redisPid], "load generator": [process.pid] };
    return await drive(pipes, (c) => `floor-instance-${String(c % INSTANCES).padStart(2, "0")}`, groups);
  } finally {
    await closeAll(pipes);
    const below = processesBelow(server.pid);
    await server.stop();
    const left = survivors(below);
    ctx.check("floor relay left no process", left.length === 0, `${left.length} of ${below.length} still running`);
  }
}

async function measureServman(ctx: BenchContext, redisUrl: string, redisPid: number): Promise<ChainResult> {
  say(`servman: servman start (gateway + node in one process), ${INSTANCES} echo instances`);
  const config = writeBenchConfig({ redisUrl, capacity: INSTANCES + 10 });
  const server = await startServman(["start", "--config", config.path, "--port", "0"]);
  const pipes: ServmanWire[] = [];
  let owner: ServmanWire | undefined;
  try {
    owner = await ServmanWire.connect(server.url!);
    const instances = await mapLimit(INSTANCES, 8, async () => String((await owner!.request({ type: "launch", task: "echo" })).instance));
    pipes.push(...(await mapLimit(CLIENTS, 50, () => ServmanWire.connect(server.url!))));
    await mapLimit(CLIENTS, 50, (c) => pipes[c]!.request({ type: "join", instance: instances[c % INSTANCES] }));
    const instancePids = processesBelow(server.pid).map((p) => p.pid);
    const groups: CpuGroups = { "gateway+node": [server.pid], instances: instancePids, redis: [redisPid], "load generator": [process.pid] };
    return await drive(pipes, (c) => instances[c % INSTANCES]!, groups);
  } finally {
    await closeAll(pipes);
    await owner?.close();
    const below = processesBelow(server.pid);
    const code = await server.stop();
    const left = survivors(below);
    ctx.check("servman stopped cleanly and left no process", code === 0 && left.length === 0, `exit code ${code}, ${left.length} of ${below.length} still running`);
    const warnings = server.stderr().split("\n").filter((l) => l.trim() !== "" && !/Ctrl-C to stop/.test(l));
    if (warnings.length > 0) ctx.notes.push(`servman logged ${warnings.length} lines at warn or above, first: ${warnings[0]!.slice(0, 300)}`);
    config.remove();
  }
}

await runBenchmark("relay", "Relay: client -> gateway -> Redis -> node -> instance -> back", async (ctx) => {
  ctx.params = { rounds: ROUNDS, warmup: WARMUP, clients: CLIENTS, instances: INSTANCES, window: WINDOW, seconds: SECONDS, warmupMs: WARMUP_MS };
  const redis = await startRedis();
  try {
    const floor = await measureFloor(ctx, redis.url, redis.pid);
    ctx.floor = { ...floor };
    const servman = await measureServman(ctx, redis.url, redis.pid);
    ctx.servman = { ...servman };
    ctx.metrics.push(
      metric("throughput", `pipelined throughput, ${CLIENTS} clients`, "msgs/s", "higher", servman.pipelined.messagesPerSecond, floor.pipelined.messagesPerSecond, { minRatio: 1.0 }),
      metric("p50", "sequential round trip p50", "ms", "lower", servman.sequential.p50Ms, floor.sequential.p50Ms, { maxRatio: 1.3 }),
      metric("p99", "sequential round trip p99", "ms", "lower", servman.sequential.p99Ms, floor.sequential.p99Ms),
      metric("loadedP50", "round trip p50 under pipelined load", "ms", "lower", servman.pipelined.latency.p50Ms, floor.pipelined.latency.p50Ms),
      metric("loadedP99", "round trip p99 under pipelined load", "ms", "lower", servman.pipelined.latency.p99Ms, floor.pipelined.latency.p99Ms),
    );
    for (const group of Object.keys(servman.cpuUsPerMessage)) {
      ctx.metrics.push(metric(`cpu.${group}`, `CPU per message: ${group}`, "µs", "lower", servman.cpuUsPerMessage[group] ?? null, floor.cpuUsPerMessage[group] ?? null));
    }
    ctx.check("no message lost (servman)", servman.pipelined.lost === 0, `${servman.pipelined.lost} of ${servman.pipelined.sent} unanswered`);
    ctx.check("no message lost (floor)", floor.pipelined.lost === 0, `${floor.pipelined.lost} of ${floor.pipelined.sent} unanswered`);
  } finally {
    await redis.stop();
  }
});
