/**
 * Failover benchmark: how long relayed traffic stops when the Redis master under it is SIGKILLed,
 * and what is lost or errored meanwhile, on a Redis Cluster (the master serving the slot of the
 * instance's channel) and on a Sentinel set (the master). Each run: a fresh Redis setup from the
 * test helpers (cluster-node-timeout and down-after-milliseconds 1000 ms), a `servman node` and
 * one `servman gateway` on it, one echo instance and one client sending an echo every
 * BENCH_FAILOVER_INTERVAL_MS without waiting for replies. After BENCH_FAILOVER_BEFORE_MS of
 * traffic the master is SIGKILLed; figures:
 *
 * - seconds from the SIGKILL to the first echo received for a message sent after it;
 * - seconds until Redis itself had failed over (the helper's `waitForFailover`), for context;
 * - messages lost (sent, never answered, after the traffic stopped and a drain) and errored
 *   (answered with an `error` frame, or counted in a `dropped` frame).
 *
 *   node dist/bench/failover.js   (BENCH_FAILOVER_TOPOLOGIES cluster,sentinel, BENCH_FAILOVER_RUNS 1, _INTERVAL_MS 10, _BEFORE_MS 1000, _AFTER_MS 3000, _TIMEOUT_S 60)
 */
import type { RawData } from "ws";
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { sleep } from "./lib/concurrency.js";
import { startDeployment, type Deployment } from "./lib/deployment.js";
import { envInt } from "./lib/env.js";
import { say } from "./lib/output.js";
import { soloMetric } from "./lib/results.js";
import { round } from "./lib/stats.js";
import { Keys } from "../src/keys.js";
import { startRedisCluster } from "../test/helpers/redis-cluster.js";
import { startRedisSentinel } from "../test/helpers/redis-sentinel.js";

const RUNS = envInt("BENCH_FAILOVER_RUNS", 1);
/** Which setups to run, in order: `cluster,sentinel` (the default), or one of them. */
const TOPOLOGIES = (process.env.BENCH_FAILOVER_TOPOLOGIES || "cluster,sentinel").split(",").map((t) => t.trim());
for (const t of TOPOLOGIES) if (t !== "cluster" && t !== "sentinel") throw new Error(`$BENCH_FAILOVER_TOPOLOGIES takes cluster and sentinel, got ${JSON.stringify(t)}`);
const INTERVAL_MS = envInt("BENCH_FAILOVER_INTERVAL_MS", 10);
const BEFORE_MS = envInt("BENCH_FAILOVER_BEFORE_MS", 1000);
/** Traffic kept up after the first echo following the kill (and after Redis failed over). */
const AFTER_MS = envInt("BENCH_FAILOVER_AFTER_MS", 3000);
const TIMEOUT_MS = envInt("BENCH_FAILOVER_TIMEOUT_S", 60) * 1000;
/** How long unanswered messages may still be answered once the traffic stopped (a command times out in 5 s). */
const DRAIN_MS = 8000;

/** One topology's Redis setup as the run needs it: its URL, the master to kill, and how to end it. */
interface Setup {
  redisUrl: string;
  /** Kills the master that matters for `channel`; `failedOver` settles once Redis failed over. */
  killMaster(channel: string, killing: () => void): Promise<{ failedOver: Promise<void> }>;
  stop(): Promise<void>;
}

async function clusterSetup(): Promise<Setup> {
  const cluster = await startRedisCluster();
  return {
    redisUrl: `redis+cluster://${cluster.ports.map((p) => `127.0.0.1:${p}`).join(",")}`,
    async killMaster(channel, killing) {
      const master = await cluster.masterOf(channel);
      say(`  killing master ${master.port} (pid ${master.pid}), which serves the slot of ${channel}`);
      killing();
      await cluster.kill(master.port);
      return { failedOver: cluster.waitForFailover(master.port, TIMEOUT_MS).then(() => undefined) };
    },
    stop: () => cluster.stop(),
  };
}

async function sentinelSetup(): Promise<Setup> {
  const sentinel = await startRedisSentinel();
  const sentinels = sentinel.sentinels.map((s) => `${s.host}:${s.port}`).join(",");
  return {
    redisUrl: `redis+sentinel://${sentinels}/${sentinel.name}`,
    async killMaster(_channel, killing) {
      const master = await sentinel.master();
      say(`  killing master ${master}`);
      killing();
      await sentinel.kill(master);
      return { failedOver: sentinel.waitForFailover(master, TIMEOUT_MS).then(() => undefined) };
    },
    stop: () => sentinel.stop(),
  };
}

interface RunFigures {
  /** SIGKILL to the first echo of a message sent after it, in seconds (null: none came). */
  recoverySeconds: number | null;
  /** SIGKILL to Redis serving again (as the helper sees it), in seconds. */
  redisFailoverSeconds: number | null;
  sent: number;
  answered: number;
  lost: number;
  errored: number;
  /** The first error frames' texts, to say what a client saw. */
  errors: string[];
}

/** Drives the traffic on `dep`'s one client, kills the master mid-way, and counts. */
async function measure(dep: Deployment, setup: Setup): Promise<RunFigures> {
  const client = dep.clients[0];
  const instance = dep.instances[0];
  const sentAt: number[] = [];
  const answered = new Set<number>();
  const errors: string[] = [];
  let errored = 0;
  let killedAt = Infinity;
  let firstAfterKill: number | null = null;
  client.onFrame((data: RawData) => {
    const text = data.toString();
    const seq = /"seq":(\d+)/.exec(text);
    if (seq && !/"type":"error"/.test(text)) {
      const n = Number(seq[1]);
      answered.add(n);
      if (firstAfterKill === null && sentAt[n] >= killedAt) firstAfterKill = performance.now();
      return;
    }
    const dropped = /"type":"dropped".*"count":(\d+)/.exec(text);
    if (dropped) errored += Number(dropped[1]);
    else if (/"type":"error"/.test(text)) errored++;
    if (errors.length < 3) errors.push(text.slice(0, 300));
  });
  let sending = true;
  const sender = (async () => {
    while (sending) {
      const seq = sentAt.length;
      sentAt.push(performance.now());
      client.send(`{"type":"send","instance":"${instance}","action":"echo","data":{"seq":${seq}}}`);
      await sleep(INTERVAL_MS);
    }
  })();
  await sleep(BEFORE_MS);
  const channel = new Keys(dep.prefix, { cluster: setup.redisUrl.startsWith("redis+cluster") }).instanceChannel(instance);
  // The clock starts at the SIGKILL itself, not before finding the master.
  const { failedOver } = await setup.killMaster(channel, () => (killedAt = performance.now()));
  let redisFailoverAt: number | null = null;
  const redisDone = failedOver.then(
    () => void (redisFailoverAt = performance.now()),
    (err: Error) => say(`  Redis did not fail over: ${err.message}`),
  );
  const deadline = killedAt + TIMEOUT_MS;
  while (firstAfterKill === null && performance.now() < deadline) await sleep(20);
  await Promise.race([redisDone, sleep(Math.max(0, deadline - performance.now()))]);
  await sleep(AFTER_MS);
  sending = false;
  await sender;
  for (let waited = 0; answered.size + errored < sentAt.length && waited < DRAIN_MS; waited += 50) await sleep(50);
  client.onFrame(null);
  const secondsSinceKill = (t: number | null) => (t === null ? null : round((t - killedAt) / 1000, 2));
  return {
    recoverySeconds: secondsSinceKill(firstAfterKill),
    redisFailoverSeconds: secondsSinceKill(redisFailoverAt),
    sent: sentAt.length,
    answered: answered.size,
    lost: Math.max(0, sentAt.length - answered.size - errored),
    errored,
    errors,
  };
}

async function run(ctx: BenchContext, topology: "cluster" | "sentinel", n: number): Promise<RunFigures> {
  say(`${topology} run ${n} of ${RUNS}: Redis setup, node + gateway, one instance, one client sending every ${INTERVAL_MS} ms`);
  const setup = topology === "cluster" ? await clusterSetup() : await sentinelSetup();
  let dep: Deployment | undefined;
  try {
    dep = await startDeployment({ redisUrl: setup.redisUrl, gateways: 1, instances: 1, clients: 1 });
    const figures = await measure(dep, setup);
    say(`  ${topology}: ${JSON.stringify(figures)}`);
    if (figures.recoverySeconds === null) {
      // What the deployment logged (warn and above) says where the relay stopped.
      for (const p of dep.processes) ctx.notes.push(`${topology} run ${n}, no recovery; pid ${p.pid} logged: ${p.stderr().slice(-3000)}`);
    }
    return figures;
  } finally {
    // The deployment's processes must end by themselves after a failover: that is checked too.
    const problems = dep ? await dep.stop().catch((err: Error) => [err.message]) : [];
    ctx.check(`${topology} run ${n}: deployment stopped cleanly and left no process`, problems.length === 0, problems.join("; ") || "ok");
    await setup.stop();
  }
}

await runBenchmark("failover", "Failover: a Redis master SIGKILLed under relayed traffic (Cluster, Sentinel)", async (ctx) => {
  ctx.params = {
    topologies: TOPOLOGIES,
    runs: RUNS,
    intervalMs: INTERVAL_MS,
    beforeMs: BEFORE_MS,
    afterMs: AFTER_MS,
    timeoutMs: TIMEOUT_MS,
    drainMs: DRAIN_MS,
    clusterNodeTimeoutMs: 1000,
    sentinelDownAfterMs: 1000,
  };
  ctx.notes.push("cluster: the master serving the instance channel's slot is killed; sentinel: the master. Redis setups from test/helpers (cluster-node-timeout / down-after-milliseconds 1000 ms)");
  const all: Record<string, RunFigures[]> = { cluster: [], sentinel: [] };
  for (const topology of TOPOLOGIES as Array<"cluster" | "sentinel">) {
    for (let n = 1; n <= RUNS; n++) {
      const f = await run(ctx, topology, n);
      all[topology].push(f);
      const suffix = RUNS > 1 ? ` (run ${n})` : "";
      ctx.metrics.push(
        soloMetric(`${topology}.${n}.recovery`, `${topology}: SIGKILL of the master to the first relayed echo${suffix}`, "s", "lower", f.recoverySeconds),
        soloMetric(`${topology}.${n}.redis`, `${topology}: SIGKILL to Redis failed over${suffix}`, "s", "lower", f.redisFailoverSeconds),
        soloMetric(`${topology}.${n}.lost`, `${topology}: messages lost of ${f.sent} sent${suffix}`, "", "lower", f.lost),
        soloMetric(`${topology}.${n}.errored`, `${topology}: messages errored${suffix}`, "", "lower", f.errored),
      );
      ctx.check(`${topology} run ${n}: relayed traffic resumed after the failover`, f.recoverySeconds !== null, `first echo after ${f.recoverySeconds ?? "-"} s`);
    }
  }
  ctx.servman = all;
});
