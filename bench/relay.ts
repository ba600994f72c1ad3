/**
 * Relay benchmark: client -> gateway -> Redis -> node -> instance -> back, for Servman (`servman
 * start` in a child process, the bench echo service as a `module` task) and for the same chain
 * built from raw ws, raw ioredis pub/sub and raw Node IPC (bench/servers/floor-relay.ts).
 *
 * Two workloads, run identically on both: sequential round trips on one connection (latency),
 * and BENCH_RELAY_CLIENTS connections spread over BENCH_RELAY_INSTANCES instances, each keeping
 * BENCH_RELAY_WINDOW messages in flight (throughput). CPU time per message is recorded for each
 * process group, to show where the time goes. Both chains stay up and the workloads alternate
 * between them BENCH_RELAY_REPEATS times, so a burst of someone else's load on this shared
 * machine hits both rather than one; each figure is the median of the repetitions. Sequential
 * round trips take turns between the chains round by round, so both see the same moments.
 *
 * With BENCH_RELAY_TASK=command, the instances speak NDJSON on stdio on both chains (a `command`
 * task running the same service with the SDK; raw stdio pipes in the floor) instead of Node IPC.
 *
 *   node dist/bench/relay.js   (sizes: BENCH_RELAY_ROUNDS, _WARMUP, _CLIENTS, _INSTANCES, _WINDOW, _SECONDS, _REPEATS; BENCH_RELAY_TASK)
 */
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { startScript, startServman } from "./lib/child-processes.js";
import { mapLimit } from "./lib/concurrency.js";
import { cpuDelta, cpuSnapshot, perUnit, type CpuGroups, type CpuSnapshot } from "./lib/cpu-time.js";
import { envInt } from "./lib/env.js";
import { processesBelow, survivors } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { startRedis } from "./lib/redis.js";
import { pipelinedLoad, sequentialRoundTrips, type PipelinedResult } from "./lib/relay-load.js";
import { metric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { median, summarize, type LatencySummary } from "./lib/stats.js";
import { PlainWire, ServmanWire, type TextPipe } from "./lib/wire-client.js";

const ROUNDS = envInt("BENCH_RELAY_ROUNDS", 2000);
const WARMUP = envInt("BENCH_RELAY_WARMUP", 200, 0);
const CLIENTS = envInt("BENCH_RELAY_CLIENTS", 100);
const INSTANCES = Math.min(CLIENTS, envInt("BENCH_RELAY_INSTANCES", 10));
const WINDOW = envInt("BENCH_RELAY_WINDOW", 10);
const SECONDS = envInt("BENCH_RELAY_SECONDS", 3);
const REPEATS = envInt("BENCH_RELAY_REPEATS", 3);
/** `module` (Node IPC, the default) or `command` (NDJSON on stdio): the instances' transport, on both chains. */
const TASK = process.env.BENCH_RELAY_TASK || "module";
if (TASK !== "module" && TASK !== "command") throw new Error(`$BENCH_RELAY_TASK must be module or command, got ${JSON.stringify(TASK)}`);
const WARMUP_MS = 1000;

/** The same client frame for both chains: a Servman `send` (the floor relays it unread). */
function sendFrame(instance: string, seq: number): string {
  return `{"type":"send","instance":"${instance}","action":"echo","data":{"seq":${seq}}}`;
}

/** One chain set up and ready to drive: its clients, their instances, its processes. */
interface Chain {
  name: "servman" | "floor";
  pipes: TextPipe[];
  instanceOf(client: number): string;
  groups: CpuGroups;
  teardown(): Promise<void>;
}

/** What one pipelined run measured. */
interface PipelinedRun extends Omit<PipelinedResult, "samples"> {
  latency: LatencySummary;
  /** CPU ms per process group during the measured interval. */
  cpuMs: CpuSnapshot;
  /** CPU µs per relayed message per process group. */
  cpuUsPerMessage: Record<string, number>;
}

/** Every repetition of both workloads on one chain. */
interface ChainRuns {
  sequential: SequentialRun[];
  pipelined: PipelinedRun[];
}

/** A sequential run: its latencies, and the CPU the chain's own processes spent per round trip. */
interface SequentialRun extends LatencySummary {
  cpuUsPerRoundTrip: Record<string, number>;
}

/** The process groups that belong to one chain alone (redis-server and the load generator serve both). */
function ownGroups(chain: Chain): CpuGroups {
  return { "gateway+node": chain.groups["gateway+node"], instances: chain.groups.instances };
}

/** Sequential round trips on every chain, taking turns round by round (see sequentialRoundTrips). */
async function runSequential(chains: readonly Chain[]): Promise<SequentialRun[]> {
  const before = chains.map((c) => cpuSnapshot(ownGroups(c)));
  // CPU is read over warm-up and rounds alike (the loop has no hook between them): both are counted.
  const samples = await sequentialRoundTrips(
    chains.map((c) => c.pipes[0]),
    (p, i) => sendFrame(chains[p].instanceOf(0), i),
    WARMUP,
    ROUNDS,
  );
  return chains.map((chain, p) => {
    const cpuUsPerRoundTrip = perUnit(cpuDelta(before[p], cpuSnapshot(ownGroups(chain))), WARMUP + ROUNDS);
    const summary = summarize(samples[p]);
    say(`  ${chain.name} sequential: p50 ${summary.p50Ms} ms, p99 ${summary.p99Ms} ms; CPU µs per round trip ${JSON.stringify(cpuUsPerRoundTrip)}`);
    return { ...summary, cpuUsPerRoundTrip };
  });
}

async function runPipelined(chain: Chain): Promise<PipelinedRun> {
  let before: CpuSnapshot = {};
  let after: CpuSnapshot = {};
  const run = await pipelinedLoad(chain.pipes, (c, seq) => sendFrame(chain.instanceOf(c), seq), WINDOW, WARMUP_MS, SECONDS * 1000, {
    onMeasureStart: () => (before = cpuSnapshot(chain.groups)),
    onMeasureEnd: () => (after = cpuSnapshot(chain.groups)),
  });
  const { samples, ...rest } = run;
  const cpuMs = cpuDelta(before, after);
  const cpuUsPerMessage = perUnit(cpuMs, (run.messagesPerSecond * run.measuredMs) / 1000);
  say(`  ${chain.name} pipelined: ${run.messagesPerSecond} msgs/s, lost ${run.lost}; CPU µs/msg ${JSON.stringify(cpuUsPerMessage)}`);
  return { ...rest, latency: summarize(samples), cpuMs, cpuUsPerMessage };
}

async function closeAll(pipes: TextPipe[]): Promise<void> {
  await Promise.allSettled(pipes.map((p) => p.close()));
}

async function setupFloor(ctx: BenchContext, redisUrl: string, redisPid: number): Promise<Chain> {
  say(`floor: raw ws + ioredis pub/sub + ${TASK === "command" ? "stdio pipes" : "Node IPC"}, ${INSTANCES} raw echo children`);
  const server = await startScript<{ url: string; pids: number[] }>("floor-relay", [redisUrl, String(INSTANCES), TASK]);
  const pipes: TextPipe[] = [];
  const teardown = async () => {
    await closeAll(pipes);
    const below = processesBelow(server.pid);
    await server.stop();
    const left = survivors(below);
    ctx.check("floor relay left no process", left.length === 0, `${left.length} of ${below.length} still running`);
  };
  try {
    const url = server.ready.url;
    pipes.push(...(await mapLimit(CLIENTS, 50, (c) => PlainWire.connect(`${url}?i=${c % INSTANCES}`, true))));
  } catch (err) {
    await teardown();
    throw err;
  }
  return {
    name: "floor",
    pipes,
    instanceOf: (c) => `floor-instance-${String(c % INSTANCES).padStart(2, "0")}`,
    groups: { "gateway+node": [server.pid], instances: server.ready.pids, redis: [redisPid], "load generator": [process.pid] },
    teardown,
  };
}

async function setupServman(ctx: BenchContext, redisUrl: string, redisPid: number): Promise<Chain> {
  say(`servman: servman start (gateway + node in one process), ${INSTANCES} echo instances (${TASK} task)`);
  const config = writeBenchConfig({ redisUrl, capacity: INSTANCES + 10, command: TASK === "command" });
  const server = await startServman(["start", "--config", config.path, "--port", "0"]);
  const pipes: ServmanWire[] = [];
  let owner: ServmanWire | undefined;
  const teardown = async () => {
    await closeAll(pipes);
    await owner?.close();
    const below = processesBelow(server.pid);
    const code = await server.stop();
    const left = survivors(below);
    ctx.check("servman stopped cleanly and left no process", code === 0 && left.length === 0, `exit code ${code}, ${left.length} of ${below.length} still running`);
    const warnings = server
      .stderr()
      .split("\n")
      .filter((l) => l.trim() !== "" && !/Ctrl-C to stop/.test(l));
    if (warnings.length > 0) ctx.notes.push(`servman logged ${warnings.length} lines at warn or above, first: ${warnings[0].slice(0, 300)}`);
    config.remove();
  };
  try {
    owner = await ServmanWire.connect(server.url!);
    const instances = await mapLimit(INSTANCES, 8, async () => String((await owner!.request({ type: "launch", task: "echo" })).instance));
    pipes.push(...(await mapLimit(CLIENTS, 50, () => ServmanWire.connect(server.url!))));
    await mapLimit(CLIENTS, 50, (c) => pipes[c].request({ type: "join", instance: instances[c % INSTANCES] }));
    const instancePids = processesBelow(server.pid).map((p) => p.pid);
    return {
      name: "servman",
      pipes,
      instanceOf: (c) => instances[c % INSTANCES],
      groups: { "gateway+node": [server.pid], instances: instancePids, redis: [redisPid], "load generator": [process.pid] },
      teardown,
    };
  } catch (err) {
    await teardown();
    throw err;
  }
}

/** Median figures of a chain's repetitions (each figure's own median). */
function medians(runs: ChainRuns) {
  const cpuGroups = Object.keys(runs.pipelined[0]?.cpuUsPerMessage ?? {});
  return {
    sequentialP50Ms: median(runs.sequential.map((r) => r.p50Ms)),
    sequentialP99Ms: median(runs.sequential.map((r) => r.p99Ms)),
    messagesPerSecond: median(runs.pipelined.map((r) => r.messagesPerSecond)),
    loadedP50Ms: median(runs.pipelined.map((r) => r.latency.p50Ms)),
    loadedP99Ms: median(runs.pipelined.map((r) => r.latency.p99Ms)),
    lost: runs.pipelined.reduce((sum, r) => sum + r.lost, 0),
    sent: runs.pipelined.reduce((sum, r) => sum + r.sent, 0),
    cpuUsPerMessage: Object.fromEntries(cpuGroups.map((g) => [g, median(runs.pipelined.map((r) => r.cpuUsPerMessage[g] ?? 0))])),
  };
}

await runBenchmark("relay", "Relay: client -> gateway -> Redis -> node -> instance -> back", async (ctx) => {
  ctx.params = { rounds: ROUNDS, warmup: WARMUP, clients: CLIENTS, instances: INSTANCES, window: WINDOW, seconds: SECONDS, warmupMs: WARMUP_MS, repeats: REPEATS, task: TASK };
  ctx.notes.push(
    `each figure is the median of ${REPEATS} repetitions on the same connections; sequential round trips take turns (floor, servman, servman, floor, ...), pipelined runs alternate (floor, then servman)`,
  );
  const redis = await startRedis();
  const chains: Chain[] = [];
  try {
    chains.push(await setupFloor(ctx, redis.url, redis.pid));
    chains.push(await setupServman(ctx, redis.url, redis.pid));
    const runs: Record<string, ChainRuns> = { floor: { sequential: [], pipelined: [] }, servman: { sequential: [], pipelined: [] } };
    for (let r = 1; r <= REPEATS; r++) {
      say(`repetition ${r} of ${REPEATS}: sequential (${WARMUP} warm-up + ${ROUNDS} round trips), then pipelined (${CLIENTS} clients x window ${WINDOW}, ${SECONDS} s)`);
      const sequential = await runSequential(chains);
      chains.forEach((chain, i) => runs[chain.name].sequential.push(sequential[i]));
      for (const chain of chains) runs[chain.name].pipelined.push(await runPipelined(chain));
    }
    const floor = medians(runs.floor);
    const servman = medians(runs.servman);
    ctx.floor = { ...floor, runs: runs.floor };
    ctx.servman = { ...servman, runs: runs.servman };
    ctx.metrics.push(
      metric("throughput", `pipelined throughput, ${CLIENTS} clients`, "msgs/s", "higher", servman.messagesPerSecond, floor.messagesPerSecond, { minRatio: 1.0 }),
      metric("p50", "sequential round trip p50", "ms", "lower", servman.sequentialP50Ms, floor.sequentialP50Ms, { maxRatio: 1.3 }),
      metric("p99", "sequential round trip p99", "ms", "lower", servman.sequentialP99Ms, floor.sequentialP99Ms),
      metric("loadedP50", "round trip p50 under pipelined load", "ms", "lower", servman.loadedP50Ms, floor.loadedP50Ms),
      metric("loadedP99", "round trip p99 under pipelined load", "ms", "lower", servman.loadedP99Ms, floor.loadedP99Ms),
    );
    for (const group of Object.keys(servman.cpuUsPerMessage)) {
      ctx.metrics.push(metric(`cpu.${group}`, `CPU per message: ${group}`, "µs", "lower", servman.cpuUsPerMessage[group] ?? null, floor.cpuUsPerMessage[group] ?? null));
    }
    ctx.check("no message lost (servman)", servman.lost === 0, `${servman.lost} of ${servman.sent} unanswered`);
    ctx.check("no message lost (floor)", floor.lost === 0, `${floor.lost} of ${floor.sent} unanswered`);
  } finally {
    for (const chain of chains) await chain.teardown().catch((err: Error) => say(`teardown of ${chain.name} failed: ${err.message}`));
    await redis.stop();
  }
});
