/**
 * Which hash-slot family each operation costs (docs/redis.md#hash-slots): on a Redis Cluster the
 * registry (`{<p>}`) and the sessions (`{<p>:sessions}`) each live on one master, the relay
 * channels, per-instance logs and per-task queues spread. This counts, with `MONITOR` on a
 * redis-server of its own, the commands of each family per operation, so that docs/scaling.md can
 * say how many launches, connections and joins one master carries. A gateway and a node, as
 * users deploy them (`servman gateway`, `servman node`).
 *
 *   node dist/bench/slot-families.js   (BENCH_FAMILIES_N 20 of each operation, BENCH_FAMILIES_IDLE_S 10)
 */
import { Redis } from "ioredis";
import { runBenchmark } from "./lib/bench-runner.js";
import { startServman, type ServmanProcess } from "./lib/child-processes.js";
import { sleep } from "./lib/concurrency.js";
import { envInt } from "./lib/env.js";
import { say } from "./lib/output.js";
import { startRedis } from "./lib/redis.js";
import { soloMetric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { ServmanWire } from "./lib/wire-client.js";

const N = envInt("BENCH_FAMILIES_N", 20);
const IDLE_MS = envInt("BENCH_FAMILIES_IDLE_S", 10) * 1000;

type Family = "registry" | "sessions" | "instance" | "queue" | "channel" | "other";
const FAMILIES: readonly Family[] = ["registry", "sessions", "instance", "queue", "channel", "other"];

/** The family of one monitored command, from its first key or channel argument. */
function familyOf(args: string[], prefix: string): Family {
  const command = (args[0] ?? "").toLowerCase();
  const first = command === "evalsha" || command === "eval" ? args[3] : args[1];
  if (command === "publish" || command === "spublish" || command.endsWith("subscribe")) return first?.startsWith(`${prefix}:logs-live:`) ? "instance" : "channel";
  if (first === undefined) return "other";
  if (first.startsWith(`{${prefix}:sessions}`)) return "sessions";
  if (first.startsWith(`{${prefix}}`)) return "registry";
  if (first.startsWith(`${prefix}:launch:`)) return "queue";
  if (first.startsWith(`${prefix}:logs:`) || first.startsWith(`${prefix}:postmortem:`)) return "instance";
  return "other";
}

/** Counts every command the server runs, by family, from `MONITOR`. */
class FamilyCounter {
  private counts = new Map<Family, number>();

  static async start(url: string, prefix: string): Promise<{ counter: FamilyCounter; monitor: Redis }> {
    const counter = new FamilyCounter();
    const monitor = await new Redis(url).monitor();
    monitor.on("monitor", (_time: string, args: string[]) => {
      const family = familyOf(args, prefix);
      counter.counts.set(family, (counter.counts.get(family) ?? 0) + 1);
    });
    return { counter, monitor };
  }

  take(): Record<Family, number> {
    const out = Object.fromEntries(FAMILIES.map((f) => [f, this.counts.get(f) ?? 0])) as Record<Family, number>;
    this.counts = new Map();
    return out;
  }
}

/** `counts` per operation, less what the idle deployment did meanwhile. */
function perOperation(counts: Record<Family, number>, idlePerMs: Record<Family, number>, ms: number, n: number): Record<Family, number> {
  return Object.fromEntries(FAMILIES.map((f) => [f, Math.max(0, Math.round(((counts[f] - idlePerMs[f] * ms) / n) * 10) / 10)])) as Record<Family, number>;
}

await runBenchmark("slot-families", "Redis commands per operation, by hash-slot family", async (ctx) => {
  ctx.params = { n: N, idleMs: IDLE_MS };
  const redis = await startRedis();
  const config = writeBenchConfig({ redisUrl: redis.url, capacity: N + 5 });
  const processes: ServmanProcess[] = [];
  const clients: ServmanWire[] = [];
  let monitor: Redis | undefined;
  try {
    processes.push(await startServman(["node", "--config", config.path]));
    processes.push(await startServman(["gateway", "--config", config.path, "--port", "0"]));
    const url = processes[1].url!;
    await sleep(2_000);
    const started = await FamilyCounter.start(redis.url, config.prefix);
    monitor = started.monitor;
    const counter = started.counter;

    await sleep(IDLE_MS);
    const idle = counter.take();
    const idlePerMs = Object.fromEntries(FAMILIES.map((f) => [f, idle[f] / IDLE_MS])) as Record<Family, number>;
    const rows: Array<[string, Record<Family, number>]> = [["idle deployment, per second", perOperation(idle, idlePerMs, 0, IDLE_MS / 1000)]];

    const measure = async (label: string, run: () => Promise<void>) => {
      counter.take();
      const t0 = performance.now();
      await run();
      await sleep(300);
      rows.push([label, perOperation(counter.take(), idlePerMs, performance.now() - t0, N)]);
    };

    await measure("connect (welcome)", async () => {
      for (let i = 0; i < N; i++) clients.push(await ServmanWire.connect(url));
    });
    const instances: string[] = [];
    await measure("launch (ready)", async () => {
      for (let i = 0; i < N; i++) instances.push(String((await clients[i].request({ type: "launch", task: "echo" })).instance));
    });
    await measure("join", async () => {
      for (let i = 0; i < N; i++) await clients[i].request({ type: "join", instance: instances[i] });
    });
    await measure("client message + echo", async () => {
      for (let i = 0; i < N; i++) {
        const echoed = new Promise<void>((resolve) => clients[i].onFrame((data) => void (data.toString().includes('"action":"echo"') && resolve())));
        clients[i].send(JSON.stringify({ type: "send", instance: instances[i], action: "echo", data: i }));
        await echoed;
      }
    });
    await measure("leave", async () => {
      for (let i = 0; i < N; i++) {
        clients[i].onFrame(null);
        await clients[i].request({ type: "leave", instance: instances[i] });
      }
    });
    await measure("stop (stopped)", async () => {
      for (let i = 0; i < N; i++) await clients[i].request({ type: "stop", instance: instances[i] });
    });
    await measure("disconnect", async () => {
      await Promise.all(clients.splice(0).map((c) => c.close()));
    });

    say(["operation", ...FAMILIES].join("\t"));
    for (const [label, counts] of rows) say([label, ...FAMILIES.map((f) => counts[f])].join("\t"));
    ctx.servman.byOperation = Object.fromEntries(rows);
    for (const [label, counts] of rows) {
      ctx.metrics.push(soloMetric(`registry:${label}`, `${label}: registry-slot commands`, "commands", "lower", counts.registry));
      ctx.metrics.push(soloMetric(`sessions:${label}`, `${label}: sessions-slot commands`, "commands", "lower", counts.sessions));
    }
  } finally {
    monitor?.disconnect();
    await Promise.allSettled(clients.map((c) => c.close()));
    await Promise.all(processes.reverse().map((p) => p.stop(60_000)));
    config.remove();
    await redis.stop();
  }
});
