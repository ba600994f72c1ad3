/**
 * Density benchmark: N live instances of a small `module` task (the bench echo service) on one
 * node (`servman node` in a child process, launched through the Launcher), against the floor: a
 * bare process forking the same service file N times (bench/servers/forker.ts). Reports memory per
 * instance (PSS, and USS: what each instance alone costs) and the node's own overhead per instance
 * (its RSS growth / N, after a warm set so that code loading is not counted).
 *
 *   node dist/bench/density.js   (BENCH_INSTANCES, default 1000; BENCH_DENSITY_CONCURRENCY, default 8)
 */
import { freemem } from "node:os";
import { Launcher } from "../src/launcher/launcher.js";
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { startScript, startServman } from "./lib/child-processes.js";
import { mapLimit, sleep } from "./lib/concurrency.js";
import { capSize, envInt, openFileLimit, type CappedSize } from "./lib/env.js";
import { processesBelow, survivors } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { ECHO_SERVICE } from "./lib/paths.js";
import { memoryOf, sumMemory } from "./lib/proc-memory.js";
import { startRedis } from "./lib/redis.js";
import { metric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { round } from "./lib/stats.js";

const WARM = 2;
const SETTLE_MS = 3000;
/** Each Node child has about 7 threads, and the machine's limit on processes (threads count) caps them near 4,600. */
const PROCESS_CAP = 4000;
/** Memory one instance needs, generously (measured: about 7.5 MB of its own, 41 MB RSS mostly shared). */
const BYTES_PER_INSTANCE = 12 * 2 ** 20;

function sizeInstances(): CappedSize {
  let size = capSize(envInt("BENCH_INSTANCES", 1000), PROCESS_CAP, "the machine's process limit (each Node child has ~7 threads)");
  // A module instance holds 3 descriptors in its node: the IPC channel, stdout and stderr pipes.
  const byFds = Math.floor((openFileLimit() - 500) / 3);
  if (size.used > byFds) size = { asked: size.asked, used: byFds, cappedBy: `the open-files limit (${openFileLimit()}), 3 per instance in the node` };
  const byMemory = Math.floor((freemem() * 0.8) / BYTES_PER_INSTANCE);
  if (size.used > byMemory) size = { asked: size.asked, used: byMemory, cappedBy: `free memory (${Math.round(freemem() / 2 ** 30)} GiB)` };
  return size;
}

const size = sizeInstances();
const N = size.used;
const CONCURRENCY = envInt("BENCH_DENSITY_CONCURRENCY", 8);

/** What one side measured with N + WARM instances live. */
interface DensityFigures {
  instances: number;
  /** RSS of the node (or forker) with only the warm set, and with every instance. */
  parentBaselineRssKb: number;
  parentRssKb: number;
  /** Parent's RSS growth per instance, in KiB. */
  parentKbPerInstance: number;
  /** Per instance process, in KiB. */
  pssKbPerInstance: number;
  ussKbPerInstance: number;
  rssKbPerInstance: number;
  launchDurationMs: number;
  launchesPerSecond: number;
}

function figures(parentPid: number, baselineRssKb: number, childPids: number[], launchDurationMs: number): DensityFigures {
  const parent = memoryOf(parentPid);
  const children = sumMemory(childPids);
  const per = (kb: number) => round(kb / Math.max(1, children.count), 1);
  return {
    instances: children.count,
    parentBaselineRssKb: baselineRssKb,
    parentRssKb: parent.rssKb,
    parentKbPerInstance: round((parent.rssKb - baselineRssKb) / N, 1),
    pssKbPerInstance: per(children.pssKb),
    ussKbPerInstance: per(children.ussKb),
    rssKbPerInstance: per(children.rssKb),
    launchDurationMs: Math.round(launchDurationMs),
    launchesPerSecond: round((N * 1000) / launchDurationMs, 1),
  };
}

function describe(f: DensityFigures): string {
  return (
    `${f.instances} processes: PSS ${f.pssKbPerInstance} KiB, USS ${f.ussKbPerInstance} KiB, RSS ${f.rssKbPerInstance} KiB each; ` +
    `parent ${Math.round(f.parentBaselineRssKb / 1024)} -> ${Math.round(f.parentRssKb / 1024)} MiB (${f.parentKbPerInstance} KiB per instance); ` +
    `launched in ${f.launchDurationMs} ms (${f.launchesPerSecond}/s)`
  );
}

async function measureFloor(ctx: BenchContext): Promise<DensityFigures> {
  say(`floor: a bare process forking the echo service ${N} times, ${CONCURRENCY} at a time`);
  const forker = await startScript("forker", [ECHO_SERVICE]);
  try {
    await forker.request("launch", { count: WARM, concurrency: 1 });
    await sleep(SETTLE_MS);
    const baseline = memoryOf(forker.pid).rssKb;
    const start = performance.now();
    await forker.request("launch", { count: N, concurrency: CONCURRENCY }, 1_800_000);
    const duration = performance.now() - start;
    await sleep(SETTLE_MS);
    const f = figures(forker.pid, baseline, await forker.request<number[]>("pids"), duration);
    say(`  ${describe(f)}`);
    return f;
  } finally {
    const below = processesBelow(forker.pid);
    await forker.request("killAll", {}, 120_000).catch(() => {});
    await forker.stop();
    const left = survivors(below);
    ctx.check("floor forker left no process", left.length === 0, `${left.length} of ${below.length} still running`);
  }
}

async function measureServman(ctx: BenchContext, redisUrl: string): Promise<DensityFigures> {
  say(`servman: servman node, ${N} instances launched through the Launcher (${CONCURRENCY} requests in flight, node launchConcurrency default)`);
  const config = writeBenchConfig({ redisUrl, capacity: N + WARM + 10 });
  const server = await startServman(["node", "--config", config.path]);
  const launcher = new Launcher({ redis: redisUrl, prefix: config.prefix });
  try {
    const launch = () => launcher.launch("echo", { timeoutMs: 1_800_000 });
    await mapLimit(WARM, 1, launch);
    await sleep(SETTLE_MS);
    const baseline = memoryOf(server.pid).rssKb;
    const start = performance.now();
    await mapLimit(N, CONCURRENCY, launch);
    const duration = performance.now() - start;
    await sleep(SETTLE_MS);
    const f = figures(
      server.pid,
      baseline,
      processesBelow(server.pid).map((p) => p.pid),
      duration,
    );
    say(`  ${describe(f)}`);
    return f;
  } finally {
    await launcher.close();
    const below = processesBelow(server.pid);
    const t = performance.now();
    // A drain: every instance is asked to shut down, then the node exits.
    const code = await server.stop(120_000);
    const drainMs = Math.round(performance.now() - t);
    const left = survivors(below);
    say(`  node drained ${below.length} instances in ${drainMs} ms`);
    ctx.servman.drainMs = drainMs;
    ctx.check("servman node drained cleanly and left no process", code === 0 && left.length === 0, `exit code ${code} after ${drainMs} ms, ${left.length} of ${below.length} still running`);
    const warnings = server
      .stderr()
      .split("\n")
      .filter((l) => l.trim() !== "" && !/Ctrl-C to stop/.test(l));
    if (warnings.length > 0) ctx.notes.push(`servman node logged ${warnings.length} lines at warn or above, first: ${warnings[0].slice(0, 300)}`);
    config.remove();
  }
}

await runBenchmark("density", `Density: ${N.toLocaleString("en-US")} live instances on one node`, async (ctx) => {
  ctx.params = { instances: N, asked: size.asked, cappedBy: size.cappedBy, warm: WARM, concurrency: CONCURRENCY, settleMs: SETTLE_MS };
  if (size.cappedBy) ctx.notes.push(`asked for ${size.asked} instances, ran ${N}: capped by ${size.cappedBy}`);
  const redis = await startRedis();
  try {
    const floor = await measureFloor(ctx);
    ctx.floor = { ...floor };
    const servman = await measureServman(ctx, redis.url);
    Object.assign(ctx.servman, servman);
    ctx.metrics.push(
      metric("pssPerInstance", "memory per instance (PSS)", "KiB", "lower", servman.pssKbPerInstance, floor.pssKbPerInstance),
      metric("ussPerInstance", "memory per instance, its own (USS)", "KiB", "lower", servman.ussKbPerInstance, floor.ussKbPerInstance),
      metric("parentPerInstance", "node (vs forker) RSS growth per instance", "KiB", "lower", servman.parentKbPerInstance, floor.parentKbPerInstance),
      metric("parentBaseline", `node (vs forker) RSS with ${WARM} instances`, "MiB", "lower", Math.round(servman.parentBaselineRssKb / 1024), Math.round(floor.parentBaselineRssKb / 1024)),
      metric("launchRate", `launches per second while filling to ${N}`, "launches/s", "higher", servman.launchesPerSecond, floor.launchesPerSecond),
    );
    ctx.check(`${N} live instances on one node`, servman.instances === N + WARM, `${servman.instances} instance processes counted (${N} + ${WARM} warm)`);
  } finally {
    await redis.stop();
  }
});
