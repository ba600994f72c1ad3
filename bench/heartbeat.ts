/**
 * Heartbeat at scale: `servman heartbeat N --json` as users run it (its own gateway and node in
 * one process, against a private redis-server), with its summary recorded. Every process below it
 * is watched while it runs; afterwards each must be gone and Redis must hold no key.
 *
 * Its floor is a duration: every pair waits (pings - 1) x interval between its first and last
 * ping, so no run can be shorter; the ratio says how much launching and relaying added.
 *
 *   node dist/bench/heartbeat.js   (BENCH_HEARTBEAT pairs, default 1000; BENCH_HEARTBEAT_PINGS, default 10;
 *                                   BENCH_HEARTBEAT_INTERVAL_MS, default 1000)
 */
import { spawn } from "node:child_process";
import { freemem } from "node:os";
import { runBenchmark } from "./lib/bench-runner.js";
import { servmanEnv } from "./lib/child-processes.js";
import { cpuTimeMs } from "./lib/cpu-time.js";
import { capSize, envInt, openFileLimit } from "./lib/env.js";
import { processesBelow, survivors, type SeenProcess } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { CLI, ROOT } from "./lib/paths.js";
import { endProcess, track } from "./lib/process-guard.js";
import { profileFlags } from "./lib/profiling.js";
import { memoryOf } from "./lib/proc-memory.js";
import { redisKeyCount, startRedis } from "./lib/redis.js";
import { metric, soloMetric } from "./lib/results.js";
import type { HeartbeatSummary } from "../cli/commands/heartbeat.js";

/** Descriptors per pair in the heartbeat process: client and server sockets, 3 for the instance. */
const FDS_PER_PAIR = 5;
const PROCESS_CAP = 4000;
const BYTES_PER_PAIR = 12 * 2 ** 20;

let size = capSize(envInt("BENCH_HEARTBEAT", 1000), PROCESS_CAP, "the machine's process limit (each Node child has ~7 threads)");
const byFds = Math.floor((openFileLimit() - 500) / FDS_PER_PAIR);
if (size.used > byFds) size = { asked: size.asked, used: byFds, cappedBy: `the open-files limit (${openFileLimit()}), ${FDS_PER_PAIR} per pair` };
const byMemory = Math.floor((freemem() * 0.8) / BYTES_PER_PAIR);
if (size.used > byMemory) size = { asked: size.asked, used: byMemory, cappedBy: `free memory (${Math.round(freemem() / 2 ** 30)} GiB)` };
const N = size.used;
const PINGS = envInt("BENCH_HEARTBEAT_PINGS", 10);
const INTERVAL_MS = envInt("BENCH_HEARTBEAT_INTERVAL_MS", 1000);
const TIMEOUT_MS = envInt("BENCH_HEARTBEAT_TIMEOUT_S", Math.max(300, Math.ceil(N * 0.6))) * 1000;
/** Scanning /proc costs CPU the run needs; instances live at least (pings - 1) x interval anyway. */
const POLL_MS = 1000;

await runBenchmark("heartbeat", `Heartbeat at scale: servman heartbeat ${N}`, async (ctx) => {
  ctx.params = { pairs: N, asked: size.asked, cappedBy: size.cappedBy, pings: PINGS, intervalMs: INTERVAL_MS, timeoutMs: TIMEOUT_MS };
  if (size.cappedBy) ctx.notes.push(`asked for ${size.asked} pairs, ran ${N}: capped by ${size.cappedBy}`);
  const redis = await startRedis();
  try {
    const args = [...profileFlags("servman-heartbeat"), CLI, "heartbeat", String(N), "--json", "--redis", redis.url, "--pings", String(PINGS), "--interval", String(INTERVAL_MS)];
    say(`running: node bin/servman.js heartbeat ${N} --json --redis ${redis.url} --pings ${PINGS} --interval ${INTERVAL_MS}`);
    const started = performance.now();
    const child = spawn(process.execPath, args, { cwd: ROOT, env: servmanEnv(), stdio: ["ignore", "pipe", "pipe"] });
    track(child, "servman heartbeat");
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-64 * 1024)));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));

    // Watch it while it runs: every process below it, its peak memory, how many instances at once.
    const seen = new Map<number, SeenProcess>();
    let peakChildren = 0;
    let peakRssKb = 0;
    let cpuMs = 0;
    const poll = setInterval(() => {
      const before = seen.size;
      const live = processesBelow(child.pid!);
      for (const p of live) if (!seen.has(p.pid)) seen.set(p.pid, p);
      peakChildren = Math.max(peakChildren, live.length);
      const own = memoryOf(child.pid!);
      peakRssKb = Math.max(peakRssKb, own.hwmKb);
      cpuMs = Math.max(cpuMs, cpuTimeMs(child.pid!));
      if (Math.floor(seen.size / 100) > Math.floor(before / 100)) say(`  ${seen.size} instance processes seen so far, ${live.length} live`);
    }, POLL_MS);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => (timer = setTimeout(() => resolve("timeout"), TIMEOUT_MS)));
    const outcome = await Promise.race([exited, timedOut]);
    clearTimeout(timer);
    clearInterval(poll);
    const wallMs = Math.round(performance.now() - started);
    if (outcome === "timeout") {
      await endProcess(child, "SIGTERM", 10_000);
      throw new Error(`servman heartbeat ${N} did not finish within ${TIMEOUT_MS} ms; stderr: ${stderr.slice(-2000)}`);
    }
    const code = outcome;
    say(`  exited with ${code} after ${wallMs} ms; ${seen.size} instance processes seen, at most ${peakChildren} at once`);
    const line = stdout.trim().split("\n").pop() ?? "";
    let summary: HeartbeatSummary;
    try {
      summary = JSON.parse(line) as HeartbeatSummary;
    } catch {
      throw new Error(`servman heartbeat printed no JSON summary (exit ${code}): ${stdout.slice(-500)} ${stderr.slice(-2000)}`);
    }
    say(`  summary: ${JSON.stringify(summary)}`);
    // Children of a process that exited are reparented; give a dying one a moment, then look.
    await new Promise((r) => setTimeout(r, 1000));
    const left = survivors([...seen.values()]);
    const keys = await redisKeyCount(redis.client);
    const idealMs = (PINGS - 1) * INTERVAL_MS;
    ctx.servman = { summary, exitCode: code, wallMs, instancesSeen: seen.size, peakLiveInstances: peakChildren, peakRssKb, cpuMs, keysLeft: keys };
    ctx.floor = { idealDurationMs: idealMs };
    ctx.metrics.push(
      metric("duration", `duration of ${N} pairs x ${PINGS} pings, ${INTERVAL_MS} ms apart`, "ms", "lower", summary.durationMs, idealMs),
      soloMetric("rttP50", "ping-pong round trip p50", "ms", "lower", summary.rttP50Ms),
      soloMetric("rttP99", "ping-pong round trip p99", "ms", "lower", summary.rttP99Ms),
      soloMetric("failed", "failed pairs", "pairs", "lower", summary.failed),
      soloMetric("peakLive", "instances live at once (peak)", "instances", "higher", peakChildren),
      soloMetric("peakRss", "heartbeat process peak RSS", "MiB", "lower", Math.round(peakRssKb / 1024)),
      soloMetric("cpuPerPair", "heartbeat process CPU per pair (gateway + node + clients)", "ms", "lower", Math.round((cpuMs / N) * 10) / 10),
    );
    ctx.check(
      `servman heartbeat ${N} passes with 0 failed pairs`,
      code === 0 && summary.failed === 0 && summary.pongs === summary.pings,
      `exit ${code}, ${summary.ok}/${summary.pairs} ok, ${summary.pongs}/${summary.pings} pongs${Object.keys(summary.errors).length > 0 ? `, errors: ${JSON.stringify(summary.errors)}` : ""}`,
    );
    ctx.check("it leaves no process behind", left.length === 0, `${left.length} of ${seen.size} processes it started still running`);
    ctx.check("it leaves no key in Redis", keys === 0, `${keys} keys left`);
    const warnings = stderr.split("\n").filter((l) => l.trim() !== "");
    if (warnings.length > 0) ctx.notes.push(`servman heartbeat logged ${warnings.length} lines at warn or above, first: ${warnings[0].slice(0, 300)}`);
  } finally {
    await redis.stop();
  }
});
