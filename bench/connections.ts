/**
 * Connections benchmark: N idle client connections on one gateway (`servman gateway` in a child
 * process, so its RSS is its own), against a bare `ws` server holding the same connections
 * (bench/servers/bare-ws.ts). Reports memory per connection (RSS growth / N, after a warm set of
 * connections so that code loading is not counted), the time to open them, and Redis's memory
 * per Servman session (each holds a subscription).
 *
 *   node dist/bench/connections.js   (BENCH_CONNECTIONS, default 10000, capped by the open-files limit;
 *                                     BENCH_CONNECT_CONCURRENCY handshakes in flight, default 200)
 */
import { runBenchmark, type BenchContext } from "./lib/bench-runner.js";
import { startScript, startServman } from "./lib/child-processes.js";
import { sleep } from "./lib/concurrency.js";
import { dropAll, openMany } from "./lib/connect-many.js";
import { capSize, envInt, openFileLimit } from "./lib/env.js";
import { say } from "./lib/output.js";
import { rssKb } from "./lib/proc-memory.js";
import { redisUsedMemory, startRedis, type BenchRedis } from "./lib/redis.js";
import { metric, soloMetric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { summarize, type LatencySummary } from "./lib/stats.js";
import { PlainWire, ServmanWire, type TextPipe } from "./lib/wire-client.js";

/** Sockets this process and the server need beyond the connections themselves. */
const FD_HEADROOM = 1000;
const WARM = 100;
const SETTLE_MS = 2000;
const LOCALHOST_PROBES = 20;

const size = capSize(envInt("BENCH_CONNECTIONS", 10_000), openFileLimit() - FD_HEADROOM - WARM, `the open-files limit (ulimit -n = ${openFileLimit()}) less ${FD_HEADROOM + WARM} for other sockets`);
const N = size.used;
const CONCURRENCY = envInt("BENCH_CONNECT_CONCURRENCY", 200);

/** What one server measured. */
interface ConnectionFigures {
  connections: number;
  baselineRssKb: number;
  rssKb: number;
  bytesPerConnection: number;
  openDurationMs: number;
  connectionsPerSecond: number;
  handshake: LatencySummary;
  /** Handshakes to ws://localhost:<port> (the server listens on 127.0.0.1 only). */
  localhostHandshake: LatencySummary | null;
}

/** Opens the warm set, reads the baseline, opens N more, settles, reads again. */
async function measure(
  pid: number,
  connect: (i: number) => Promise<TextPipe>,
  localhost: () => Promise<TextPipe>,
  hooks: { beforeOpen?(): Promise<void>; whileHeld?(): Promise<void> } = {},
): Promise<ConnectionFigures> {
  const held: TextPipe[] = [];
  try {
    held.push(...(await openMany(WARM, 50, connect)).pipes);
    await sleep(SETTLE_MS);
    const baselineRssKb = rssKb(pid);
    await hooks.beforeOpen?.();
    say(`  baseline RSS ${Math.round(baselineRssKb / 1024)} MiB with ${WARM} warm connections; opening ${N}, ${CONCURRENCY} at a time`);
    const opened = await openMany(N, CONCURRENCY, connect);
    held.push(...opened.pipes);
    await sleep(SETTLE_MS);
    const after = rssKb(pid);
    await hooks.whileHeld?.();
    const bytesPerConnection = Math.round(((after - baselineRssKb) * 1024) / N);
    const handshake = summarize(opened.handshakeMs);
    const connectionsPerSecond = Math.round((N * 1000) / opened.durationMs);
    say(
      `  RSS ${Math.round(after / 1024)} MiB: ${bytesPerConnection} bytes per connection; opened in ${Math.round(opened.durationMs)} ms (${connectionsPerSecond}/s), handshake p50 ${handshake.p50Ms} ms, p99 ${handshake.p99Ms} ms`,
    );
    let localhostHandshake: LatencySummary | null = null;
    try {
      const times: number[] = [];
      for (let i = 0; i < LOCALHOST_PROBES; i++) {
        const t = performance.now();
        held.push(await localhost());
        times.push(performance.now() - t);
      }
      localhostHandshake = summarize(times);
      say(`  via ws://localhost: handshake p50 ${localhostHandshake.p50Ms} ms, p99 ${localhostHandshake.p99Ms} ms`);
    } catch (err) {
      say(`  via ws://localhost: failed (${(err as Error).message})`);
    }
    return {
      connections: N,
      baselineRssKb,
      rssKb: after,
      bytesPerConnection,
      openDurationMs: Math.round(opened.durationMs),
      connectionsPerSecond,
      handshake,
      localhostHandshake,
    };
  } finally {
    dropAll(held);
  }
}

async function measureFloor(ctx: BenchContext): Promise<ConnectionFigures> {
  say("floor: a bare ws server in its own process");
  const server = await startScript<{ url: string }>("bare-ws");
  try {
    const url = server.ready.url;
    return await measure(
      server.pid,
      () => PlainWire.connect(url, false),
      () => PlainWire.connect(url.replace("127.0.0.1", "localhost"), false),
    );
  } finally {
    const code = await server.stop();
    ctx.check("bare ws server stopped", code === 0, `exit code ${code}`);
  }
}

async function measureServman(ctx: BenchContext, redis: BenchRedis): Promise<ConnectionFigures & { redisBytesPerSession: number }> {
  say("servman: servman gateway in its own process (a connection counts once its welcome arrived)");
  const config = writeBenchConfig({ redisUrl: redis.url, capacity: 0 });
  const server = await startServman(["gateway", "--config", config.path, "--port", "0"]);
  try {
    const url = server.url!;
    let redisBefore = 0;
    let redisBytesPerSession = 0;
    const figures = await measure(
      server.pid,
      () => ServmanWire.connect(url),
      () => ServmanWire.connect(url.replace("127.0.0.1", "localhost")),
      {
        beforeOpen: async () => void (redisBefore = await redisUsedMemory(redis.client)),
        whileHeld: async () => void (redisBytesPerSession = Math.round(((await redisUsedMemory(redis.client)) - redisBefore) / N)),
      },
    );
    say(`  Redis: ${redisBytesPerSession} bytes per session (its subscription)`);
    return { ...figures, redisBytesPerSession };
  } finally {
    const code = await server.stop();
    ctx.check("servman gateway stopped cleanly", code === 0, `exit code ${code}`);
    const warnings = server
      .stderr()
      .split("\n")
      .filter((l) => l.trim() !== "" && !/Ctrl-C to stop/.test(l));
    if (warnings.length > 0) ctx.notes.push(`servman gateway logged ${warnings.length} lines at warn or above, first: ${warnings[0].slice(0, 300)}`);
    config.remove();
  }
}

await runBenchmark("connections", `Connections: ${N.toLocaleString("en-US")} idle clients on one gateway`, async (ctx) => {
  ctx.params = { connections: N, asked: size.asked, cappedBy: size.cappedBy, concurrency: CONCURRENCY, warm: WARM, settleMs: SETTLE_MS };
  if (size.cappedBy) ctx.notes.push(`asked for ${size.asked} connections, ran ${N}: capped by ${size.cappedBy}`);
  const redis = await startRedis();
  try {
    const floor = await measureFloor(ctx);
    ctx.floor = { ...floor };
    const servman = await measureServman(ctx, redis);
    ctx.servman = { ...servman };
    ctx.metrics.push(
      metric("bytesPerConnection", "gateway memory per connection (RSS)", "bytes", "lower", servman.bytesPerConnection, floor.bytesPerConnection, { maxRatio: 2 }),
      metric("baselineRss", `process RSS with ${WARM} connections`, "MiB", "lower", Math.round(servman.baselineRssKb / 1024), Math.round(floor.baselineRssKb / 1024)),
      metric("openRate", `connections opened per second, ${CONCURRENCY} at a time`, "conn/s", "higher", servman.connectionsPerSecond, floor.connectionsPerSecond),
      metric("openDuration", `time to open ${N.toLocaleString("en-US")}`, "ms", "lower", servman.openDurationMs, floor.openDurationMs),
      metric("handshakeP50", "handshake p50", "ms", "lower", servman.handshake.p50Ms, floor.handshake.p50Ms),
      metric("handshakeP99", "handshake p99", "ms", "lower", servman.handshake.p99Ms, floor.handshake.p99Ms),
      metric("localhostP50", "handshake p50 via ws://localhost", "ms", "lower", servman.localhostHandshake?.p50Ms ?? null, floor.localhostHandshake?.p50Ms ?? null),
      soloMetric("redisBytesPerSession", "Redis memory per Servman session", "bytes", "lower", servman.redisBytesPerSession),
    );
    ctx.check("every connection opened (servman)", servman.connections === N, `${servman.connections} of ${N}`);
  } finally {
    await redis.stop();
  }
});
