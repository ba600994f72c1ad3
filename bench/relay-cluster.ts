/**
 * Relay on a Redis Cluster against one Redis, in the same run: the same deployment (`servman
 * node` + BENCH_CLUSTER_GATEWAYS `servman gateway`, BENCH_CLUSTER_INSTANCES echo instances,
 * BENCH_CLUSTER_CLIENTS clients, client c joined to instance c mod N) on a redis-server of its
 * own and on a local 3-master + 3-replica cluster (test/helpers/redis-cluster.ts). Channels hash
 * on their whole name, so the instances' channels spread over the masters' slots.
 *
 * - Sequential echo round trips, the two deployments taking turns round by round (one client's
 *   round trip on one, then on the other, order reversed every other round) and the client
 *   rotating over all of them: p50 and p99, cluster / single (target: p50 <= 1.3x).
 * - Pipelined load (every client keeps BENCH_CLUSTER_WINDOW messages in flight for
 *   BENCH_CLUSTER_SECONDS), alternating between the deployments: throughput, and on the cluster
 *   each master's share of the Redis CPU used (INFO cpu deltas over the measured intervals;
 *   target: no master above 50%), and its share of the SPUBLISH calls.
 *
 *   node dist/bench/relay-cluster.js   (BENCH_CLUSTER_ROUNDS 1000, _WARMUP 100, _CLIENTS 60, _INSTANCES 30, _GATEWAYS 2, _WINDOW 4, _SECONDS 3, _REPEATS 3)
 */
import { runBenchmark } from "./lib/bench-runner.js";
import { cpuDelta, cpuSnapshot, type CpuSnapshot } from "./lib/cpu-time.js";
import { startDeployment, type Deployment } from "./lib/deployment.js";
import { envInt } from "./lib/env.js";
import { say } from "./lib/output.js";
import { startRedis } from "./lib/redis.js";
import { pipelinedLoad, sequentialRoundTrips } from "./lib/relay-load.js";
import { metric, soloMetric } from "./lib/results.js";
import { round, summarize } from "./lib/stats.js";
import { askNode, startRedisCluster, type NodeStats, type TestRedisCluster } from "../test/helpers/redis-cluster.js";

const ROUNDS = envInt("BENCH_CLUSTER_ROUNDS", 1000);
const WARMUP = envInt("BENCH_CLUSTER_WARMUP", 100, 0);
const CLIENTS = envInt("BENCH_CLUSTER_CLIENTS", 60);
const INSTANCES = Math.min(CLIENTS, envInt("BENCH_CLUSTER_INSTANCES", 30));
const GATEWAYS = envInt("BENCH_CLUSTER_GATEWAYS", 2);
const WINDOW = envInt("BENCH_CLUSTER_WINDOW", 4);
const SECONDS = envInt("BENCH_CLUSTER_SECONDS", 3);
const REPEATS = envInt("BENCH_CLUSTER_REPEATS", 3);
const WARMUP_MS = 1000;

const sendFrame = (instance: string, seq: number) => `{"type":"send","instance":"${instance}","action":"echo","data":{"seq":${seq}}}`;

/** The median of `values` (the lower middle of an even count). */
function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

/**
 * Sequential round trips on both deployments, taking turns; client i mod CLIENTS in round i, so
 * every instance channel (and so every master) carries its share. Returns each one's samples.
 */
async function sequential(deployments: readonly Deployment[]): Promise<number[][]> {
  const samples = deployments.map(() => [] as number[]);
  for (let i = 0; i < WARMUP + ROUNDS; i++) {
    const c = i % CLIENTS;
    const order = i % 2 === 0 ? [0, 1] : [1, 0];
    for (const d of order) {
      const dep = deployments[d];
      const [ms] = await sequentialRoundTrips([dep.clients[c]], () => sendFrame(dep.instances[c % dep.instances.length], i), 0, 1);
      if (i >= WARMUP) samples[d].push(ms[0]);
    }
  }
  return samples;
}

/** CPU seconds and SPUBLISH calls of each master, between two `commandStats` readings. */
function masterDeltas(before: NodeStats[], after: NodeStats[], masters: readonly number[]): Map<number, { cpu: number; spublish: number }> {
  const out = new Map<number, { cpu: number; spublish: number }>();
  for (const port of masters) {
    const a = before.find((n) => n.port === port);
    const b = after.find((n) => n.port === port);
    if (!a || !b) continue;
    out.set(port, { cpu: b.cpuSeconds - a.cpuSeconds, spublish: (b.calls.spublish ?? 0) - (a.calls.spublish ?? 0) });
  }
  return out;
}

interface PipelinedFigures {
  messagesPerSecond: number;
  p50Ms: number;
  lost: number;
  sent: number;
  /** CPU ms of the deployment's processes (servman and instances) per 1000 messages. */
  servmanCpuMsPerK: number;
}

async function pipelined(dep: Deployment, hooks: { start?(): Promise<void> | void; end?(): Promise<void> | void } = {}): Promise<PipelinedFigures> {
  let before: CpuSnapshot = {};
  let after: CpuSnapshot = {};
  const groups = { servman: dep.pids() };
  // The hooks run synchronously inside the load; async readings (Redis INFO) are awaited just after.
  const readings: Promise<void>[] = [];
  const run = await pipelinedLoad(dep.clients, (c, seq) => sendFrame(dep.instances[c % dep.instances.length], seq), WINDOW, WARMUP_MS, SECONDS * 1000, {
    onMeasureStart: () => {
      before = cpuSnapshot(groups);
      readings.push(Promise.resolve(hooks.start?.()));
    },
    onMeasureEnd: () => {
      after = cpuSnapshot(groups);
      readings.push(Promise.resolve(hooks.end?.()));
    },
  });
  await Promise.all(readings);
  const messages = (run.messagesPerSecond * run.measuredMs) / 1000;
  const cpu = cpuDelta(before, after).servman ?? 0;
  return { messagesPerSecond: run.messagesPerSecond, p50Ms: summarize(run.samples).p50Ms, lost: run.lost, sent: run.sent, servmanCpuMsPerK: round((cpu * 1000) / Math.max(1, messages), 2) };
}

await runBenchmark("relay-cluster", "Relay on a 3-master Redis Cluster against one Redis, same deployment and workload", async (ctx) => {
  ctx.params = { rounds: ROUNDS, warmup: WARMUP, clients: CLIENTS, instances: INSTANCES, gateways: GATEWAYS, window: WINDOW, seconds: SECONDS, repeats: REPEATS };
  ctx.notes.push(
    "servman = the deployment on the cluster, floor = the same deployment on one redis-server; sequential round trips take turns round by round, pipelined runs alternate (single, then cluster)",
    "master CPU share: each master's used_cpu_sys+user delta over the cluster's pipelined intervals, over the masters' total",
  );
  const single = await startRedis();
  let cluster: TestRedisCluster | undefined;
  const deployments: Deployment[] = [];
  try {
    cluster = await startRedisCluster();
    const clusterUrl = `redis+cluster://${cluster.ports.map((p) => `127.0.0.1:${p}`).join(",")}`;
    say(`single redis ${single.url}; cluster ${clusterUrl}`);
    for (const redisUrl of [single.url, clusterUrl]) {
      say(`deployment on ${redisUrl.startsWith("redis+cluster") ? "the cluster" : "one redis"}: node + ${GATEWAYS} gateways, ${INSTANCES} instances, ${CLIENTS} clients`);
      deployments.push(await startDeployment({ redisUrl, gateways: GATEWAYS, instances: INSTANCES, clients: CLIENTS }));
    }
    const masters = (await cluster.masters()).map((m) => m.port);
    const c = cluster;
    const seqRuns: { single: number[][]; cluster: number[][] } = { single: [], cluster: [] };
    const pipeRuns: { single: PipelinedFigures[]; cluster: PipelinedFigures[] } = { single: [], cluster: [] };
    const cpuByMaster = new Map<number, { cpu: number; spublish: number }>(masters.map((p) => [p, { cpu: 0, spublish: 0 }]));
    for (let r = 1; r <= REPEATS; r++) {
      say(`repetition ${r} of ${REPEATS}: sequential (${WARMUP} + ${ROUNDS} round trips each, taking turns), then pipelined (${CLIENTS} x ${WINDOW}, ${SECONDS} s) on each`);
      const [s, k] = await sequential(deployments);
      seqRuns.single.push(s);
      seqRuns.cluster.push(k);
      say(`  sequential p50: single ${summarize(s).p50Ms} ms, cluster ${summarize(k).p50Ms} ms`);
      pipeRuns.single.push(await pipelined(deployments[0]));
      let before: NodeStats[] = [];
      let after: NodeStats[] = [];
      pipeRuns.cluster.push(
        await pipelined(deployments[1], {
          start: async () => void (before = (await c.commandStats()).nodes),
          end: async () => void (after = (await c.commandStats()).nodes),
        }),
      );
      for (const [port, d] of masterDeltas(before, after, masters)) {
        const sum = cpuByMaster.get(port)!;
        sum.cpu += d.cpu;
        sum.spublish += d.spublish;
      }
      say(`  pipelined: single ${pipeRuns.single.at(-1)!.messagesPerSecond} msgs/s, cluster ${pipeRuns.cluster.at(-1)!.messagesPerSecond} msgs/s`);
    }
    const seq = (runs: number[][]) => ({ p50Ms: median(runs.map((x) => summarize(x).p50Ms)), p99Ms: median(runs.map((x) => summarize(x).p99Ms)) });
    const pipe = (runs: PipelinedFigures[]) => ({
      messagesPerSecond: median(runs.map((x) => x.messagesPerSecond)),
      loadedP50Ms: median(runs.map((x) => x.p50Ms)),
      servmanCpuMsPerK: median(runs.map((x) => x.servmanCpuMsPerK)),
      lost: runs.reduce((a, x) => a + x.lost, 0),
      sent: runs.reduce((a, x) => a + x.sent, 0),
    });
    // Where the channels live: every reply crosses its gateway's channel, so a master holding
    // one carries a share of all replies whatever the instances' spread.
    const channelsOn = async (port: number, kind: string) => ((await askNode(port, "PUBSUB", "SHARDCHANNELS", `${deployments[1].prefix}:${kind}:*`)) as string[]).length;
    const placement = await Promise.all(masters.map(async (port) => ({ port, gatewayChannels: await channelsOn(port, "to-gateway"), instanceChannels: await channelsOn(port, "to-instance") })));
    const totalCpu = [...cpuByMaster.values()].reduce((a, m) => a + m.cpu, 0);
    const totalPub = [...cpuByMaster.values()].reduce((a, m) => a + m.spublish, 0);
    const shares = [...cpuByMaster].map(([port, m]) => ({
      port,
      cpuSeconds: round(m.cpu, 3),
      cpuPercent: round((100 * m.cpu) / Math.max(1e-9, totalCpu), 1),
      spublishPercent: round((100 * m.spublish) / Math.max(1, totalPub), 1),
      ...placement.find((p) => p.port === port),
    }));
    const maxShare = Math.max(...shares.map((s) => s.cpuPercent));
    const singleFig = { ...seq(seqRuns.single), ...pipe(pipeRuns.single) };
    const clusterFig = { ...seq(seqRuns.cluster), ...pipe(pipeRuns.cluster), masters: shares };
    ctx.floor = { ...singleFig, runs: pipeRuns.single };
    ctx.servman = { ...clusterFig, runs: pipeRuns.cluster };
    say(`  cluster masters: ${JSON.stringify(shares)}`);
    ctx.metrics.push(
      metric("p50", "sequential echo p50, cluster / single", "ms", "lower", clusterFig.p50Ms, singleFig.p50Ms, { maxRatio: 1.3 }),
      metric("p99", "sequential echo p99, cluster / single", "ms", "lower", clusterFig.p99Ms, singleFig.p99Ms),
      metric("throughput", `pipelined throughput, ${CLIENTS} clients, cluster / single`, "msgs/s", "higher", clusterFig.messagesPerSecond, singleFig.messagesPerSecond),
      metric("loadedP50", "round trip p50 under pipelined load, cluster / single", "ms", "lower", clusterFig.loadedP50Ms, singleFig.loadedP50Ms),
      metric("servmanCpu", "servman + instances CPU per 1000 messages, cluster / single", "ms", "lower", clusterFig.servmanCpuMsPerK, singleFig.servmanCpuMsPerK),
      metric("maxMasterCpu", "largest master's share of the relay's Redis CPU (cluster)", "%", "lower", maxShare, null, { below: 50 }),
      soloMetric("maxMasterPublishes", "largest master's share of SPUBLISH calls (cluster)", "%", "lower", Math.max(...shares.map((s) => s.spublishPercent))),
    );
    ctx.check("no message lost (cluster)", clusterFig.lost === 0, `${clusterFig.lost} of ${clusterFig.sent} unanswered`);
    ctx.check("no message lost (single)", singleFig.lost === 0, `${singleFig.lost} of ${singleFig.sent} unanswered`);
    ctx.check("every master carried relay traffic", shares.length === 3 && shares.every((s) => s.spublishPercent > 0), JSON.stringify(shares));
  } finally {
    for (const d of deployments) {
      const problems = await d.stop().catch((err: Error) => [err.message]);
      ctx.check("deployment stopped cleanly and left no process", problems.length === 0, problems.join("; ") || "ok");
    }
    await cluster?.stop();
    await single.stop();
  }
});
