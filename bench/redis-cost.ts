/**
 * Redis cost benchmark: how many Redis commands (and publishes, and Redis CPU) each thing a
 * deployment does costs, counted with `INFO commandstats` on a redis-server of its own. Two
 * `servman gateway` processes and one `servman node`, as users deploy them. Measured, in order:
 *
 * - idle: commands per second with nothing connected (the gateways' and node's heartbeats);
 * - a launch, one at a time;
 * - a client message and its echo, one client;
 * - a broadcast from a service to M members whose sessions are held by 2 gateways: publishes per
 *   broadcast, against the floor of one publish per gateway plus one (docs/scaling.md);
 * - idle joined sessions and idle instances: commands per second above the idle deployment.
 *
 * The counts are the basis of the capacity model in docs/scaling.md.
 *
 *   node dist/bench/redis-cost.js   (BENCH_COST_MEMBERS 100, _BROADCASTS 200, _MESSAGES 1000, _LAUNCHES 10, _IDLE_S 10)
 */
import type { Redis } from "ioredis";
import type { RawData } from "ws";
import { runBenchmark } from "./lib/bench-runner.js";
import { startServman, type ServmanProcess } from "./lib/child-processes.js";
import { sleep } from "./lib/concurrency.js";
import { envInt } from "./lib/env.js";
import { say } from "./lib/output.js";
import { startRedis } from "./lib/redis.js";
import { metric, soloMetric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { ServmanWire } from "./lib/wire-client.js";

const MEMBERS = envInt("BENCH_COST_MEMBERS", 100);
const BROADCASTS = envInt("BENCH_COST_BROADCASTS", 200);
const MESSAGES = envInt("BENCH_COST_MESSAGES", 1000);
const LAUNCHES = envInt("BENCH_COST_LAUNCHES", 10);
const IDLE_MS = envInt("BENCH_COST_IDLE_S", 10) * 1000;
const GATEWAYS = 2;

/** Calls per command, and Redis's CPU seconds, from one redis-server. */
interface Snapshot {
  calls: Map<string, number>;
  cpu: number;
}

async function snapshot(redis: Redis): Promise<Snapshot> {
  const calls = new Map<string, number>();
  for (const m of (await redis.info("commandstats")).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(m[1], Number(m[2]));
  const cpu = await redis.info("cpu");
  const seconds = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, "m").exec(cpu)?.[1] ?? 0);
  return { calls, cpu: seconds("used_cpu_sys") + seconds("used_cpu_user") };
}

/** What happened between two snapshots; the snapshot commands themselves (INFO) left out. */
function delta(a: Snapshot, b: Snapshot): { total: number; publish: number; byCommand: Record<string, number>; cpuSeconds: number } {
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const [command, calls] of b.calls) {
    const n = calls - (a.calls.get(command) ?? 0);
    if (n <= 0 || command === "info") continue;
    byCommand[command] = n;
    total += n;
  }
  return { total, publish: (byCommand.publish ?? 0) + (byCommand.spublish ?? 0), byCommand, cpuSeconds: b.cpu - a.cpu };
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

interface BroadcastCost {
  publishesPerBroadcast: number;
  cpuPerDeliveredUs: number;
  delivered: number;
  byCommand: Record<string, number>;
}

/**
 * The owner (a member) asks the service for BROADCASTS broadcasts to every member of `target`;
 * resolves once every member has them. `counts[i]` counts member i's frames (the owner's: `ownerSeen`).
 */
async function broadcasts(redis: Redis, owner: ServmanWire, target: string, counts: number[], ownerSeen: () => number): Promise<BroadcastCost> {
  const shout = JSON.stringify({ type: "send", instance: target, action: "shout", data: 1 });
  const delivered = () => counts.reduce((a, b) => a + b, 0) + ownerSeen();
  const start = delivered();
  const before = await snapshot(redis);
  for (let i = 0; i < BROADCASTS; i++) owner.send(shout);
  const expected = start + BROADCASTS * MEMBERS;
  for (let waited = 0; delivered() < expected && waited < 120_000; waited += 20) await sleep(20);
  const cost = delta(before, await snapshot(redis));
  const n = delivered() - start;
  // Less the owner's own sends, which asked for the broadcasts.
  return { publishesPerBroadcast: (cost.publish - BROADCASTS) / BROADCASTS, cpuPerDeliveredUs: (cost.cpuSeconds * 1e6) / Math.max(1, n), delivered: n, byCommand: cost.byCommand };
}

/** Members spread over the gateways at `urls`, joined to `target`; `counts[i]` counts member i's frames. */
async function joinMembers(urls: string[], target: string, clients: ServmanWire[]): Promise<number[]> {
  const counts = new Array<number>(MEMBERS).fill(0);
  for (let i = 1; i < MEMBERS; i++) {
    const member = await ServmanWire.connect(urls[i % urls.length]);
    clients.push(member);
    await member.request({ type: "join", instance: target });
    member.onFrame(() => counts[i]++);
  }
  return counts;
}

/** A `servman node` and GATEWAYS `servman gateway` processes on `configPath`; their processes (node first) and the gateways' URLs. */
async function startDeployment(configPath: string, processes: ServmanProcess[]): Promise<string[]> {
  processes.push(await startServman(["node", "--config", configPath]));
  for (let i = 0; i < GATEWAYS; i++) processes.push(await startServman(["gateway", "--config", configPath, "--port", "0"]));
  return processes.slice(1).map((p) => p.url!);
}

/**
 * The same broadcasts on a deployment of its own whose gateways take one publish per member
 * (`gateway.fanout: "session"`): the design before fan-out, measured in the same run.
 */
async function perSessionBroadcasts(): Promise<BroadcastCost> {
  const redis = await startRedis();
  const config = writeBenchConfig({ redisUrl: redis.url, capacity: 5, gateway: { fanout: "session" } });
  const processes: ServmanProcess[] = [];
  const clients: ServmanWire[] = [];
  try {
    const urls = await startDeployment(config.path, processes);
    const owner = await ServmanWire.connect(urls[0]);
    clients.push(owner);
    const target = String((await owner.request({ type: "launch", task: "echo" })).instance);
    await owner.request({ type: "join", instance: target });
    let ownerSeen = 0;
    owner.onFrame((data: RawData) => void (data.toString().includes('"action":"shout"') && ownerSeen++));
    const counts = await joinMembers(urls, target, clients);
    return await broadcasts(redis.client, owner, target, counts, () => ownerSeen);
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.all(processes.reverse().map((p) => p.stop(60_000)));
    config.remove();
    await redis.stop();
  }
}

await runBenchmark("redis-cost", `Redis commands per operation, ${GATEWAYS} gateways and a node`, async (ctx) => {
  ctx.params = { gateways: GATEWAYS, members: MEMBERS, broadcasts: BROADCASTS, messages: MESSAGES, launches: LAUNCHES, idleMs: IDLE_MS };
  const redis = await startRedis();
  const config = writeBenchConfig({ redisUrl: redis.url, capacity: LAUNCHES + 10 });
  const processes: ServmanProcess[] = [];
  const clients: ServmanWire[] = [];
  try {
    const urls = await startDeployment(config.path, processes);
    await sleep(2_000);

    // Idle deployment: heartbeats, liveness keys, health pings.
    let before = await snapshot(redis.client);
    await sleep(IDLE_MS);
    const idle = delta(before, await snapshot(redis.client));
    const idlePerSecond = idle.total / (IDLE_MS / 1000);
    say(`idle deployment: ${round(idlePerSecond)} commands/s (${JSON.stringify(idle.byCommand)})`);

    // Launches, one at a time.
    const owner = await ServmanWire.connect(urls[0]);
    clients.push(owner);
    before = await snapshot(redis.client);
    const t0 = performance.now();
    const instances: string[] = [];
    for (let i = 0; i < LAUNCHES; i++) instances.push(String((await owner.request({ type: "launch", task: "echo" })).instance));
    const launchMs = performance.now() - t0;
    const launch = delta(before, await snapshot(redis.client));
    const perLaunch = (launch.total - (idlePerSecond * launchMs) / 1000) / LAUNCHES;
    say(`launch: ${round(perLaunch, 1)} commands each (${JSON.stringify(launch.byCommand)})`);

    // Messages: one client, one instance, sequential echoes.
    const target = instances[0];
    await owner.request({ type: "join", instance: target });
    let waiting: (() => void) | undefined;
    let broadcastsSeen = 0;
    owner.onFrame((data: RawData) => {
      const text = data.toString();
      if (text.includes('"action":"echo"')) waiting?.();
      else if (text.includes('"action":"shout"')) broadcastsSeen++;
    });
    const echo = JSON.stringify({ type: "send", instance: target, action: "echo", data: 1 });
    before = await snapshot(redis.client);
    const t1 = performance.now();
    for (let i = 0; i < MESSAGES; i++) await new Promise<void>((resolve) => ((waiting = resolve), owner.send(echo)));
    const messageMs = performance.now() - t1;
    const messages = delta(before, await snapshot(redis.client));
    const perMessage = (messages.total - (idlePerSecond * messageMs) / 1000) / MESSAGES;
    say(`client message + echo: ${round(perMessage)} commands, ${round(messages.publish / MESSAGES)} publishes (${JSON.stringify(messages.byCommand)})`);

    // Members spread over the gateways, joined to the target.
    const counts = await joinMembers(urls, target, clients);
    await sleep(1_000);

    // Idle joined sessions and idle instances, above the idle deployment.
    before = await snapshot(redis.client);
    await sleep(IDLE_MS);
    const idleJoined = delta(before, await snapshot(redis.client));
    const idleExtraPerSecond = idleJoined.total / (IDLE_MS / 1000) - idlePerSecond;
    say(`${MEMBERS} idle joined sessions and ${LAUNCHES} idle instances: ${round(idleExtraPerSecond)} commands/s above the idle deployment`);

    const broadcast = await broadcasts(redis.client, owner, target, counts, () => broadcastsSeen);
    const { publishesPerBroadcast, cpuPerDeliveredUs, delivered } = broadcast;
    const floorPublishes = GATEWAYS + 1;
    say(
      `broadcast to ${MEMBERS} members on ${GATEWAYS} gateways: ${round(publishesPerBroadcast, 1)} publishes each (floor ${floorPublishes}); Redis CPU ${round(cpuPerDeliveredUs)} µs per delivered message; ${delivered} delivered`,
    );
    const perSession = await perSessionBroadcasts();
    say(
      `the same with gateway.fanout "session" (one publish per member, the design before fan-out): ${round(perSession.publishesPerBroadcast, 1)} publishes each; Redis CPU ${round(perSession.cpuPerDeliveredUs)} µs per delivered message`,
    );

    Object.assign(ctx.servman, {
      idlePerSecond,
      idleByCommand: idle.byCommand,
      perLaunch,
      launchByCommand: launch.byCommand,
      perMessage,
      messageByCommand: messages.byCommand,
      idleExtraPerSecond,
      publishesPerBroadcast,
      broadcastByCommand: broadcast.byCommand,
      cpuPerDeliveredUs,
      delivered,
    });
    ctx.floor = { publishesPerBroadcast: floorPublishes, perSession };
    ctx.metrics.push(
      metric(
        "publishesPerBroadcast",
        `publishes per broadcast, ${MEMBERS} members on ${GATEWAYS} gateways (floor: gateways + 1)`,
        "commands",
        "lower",
        round(publishesPerBroadcast, 1),
        floorPublishes,
        { maxRatio: 1 },
      ),
      metric(
        "cpuPerDelivered",
        "Redis CPU per delivered broadcast message, vs one publish per member (gateway.fanout session, same run)",
        "µs",
        "lower",
        round(cpuPerDeliveredUs),
        round(perSession.cpuPerDeliveredUs),
        { maxRatio: 0.1 },
      ),
      metric(
        "publishesVsPerSession",
        "publishes per broadcast, vs one publish per member (same run)",
        "commands",
        "lower",
        round(publishesPerBroadcast, 1),
        round(perSession.publishesPerBroadcast, 1),
      ),
      soloMetric("perMessage", "commands per client message and its echo", "commands", "lower", round(perMessage)),
      soloMetric("perLaunch", "commands per launch", "commands", "lower", round(perLaunch, 1)),
      soloMetric("idle", `commands per second, idle deployment (${GATEWAYS} gateways, 1 node)`, "commands/s", "lower", round(idlePerSecond)),
      soloMetric("idleJoined", `commands per second for ${MEMBERS} idle joined sessions + ${LAUNCHES} idle instances`, "commands/s", "lower", round(idleExtraPerSecond)),
    );
    const expected = BROADCASTS * MEMBERS;
    ctx.check("every broadcast reached every member", delivered >= expected && perSession.delivered >= expected, `${delivered} and ${perSession.delivered} (per session) of ${expected}`);
  } finally {
    await Promise.allSettled(clients.map((c) => c.close()));
    const codes = await Promise.all(processes.reverse().map((p) => p.stop(60_000)));
    ctx.check(
      "servman processes stopped cleanly",
      codes.every((c) => c === 0),
      `exit codes ${codes.join(", ")}`,
    );
    config.remove();
    await redis.stop();
  }
});
