/**
 * Stalled-service benchmark: one client sends as fast as it may (large frames, under the frame and
 * rate limits) to an instance whose process has stopped reading its stdin, on `servman start`.
 * Reported: the node's RSS during and after the flood, as a ratio to the same node with the same
 * instances idle, measured just before in the same run. The task's `maxQueuedBytes` bounds what
 * the node holds for the stalled process; what does not fit is dropped and told to the client
 * (`dropped`), and another instance on the node must keep answering throughout.
 *
 *   node dist/bench/stalled.js   (BENCH_STALLED_FRAMES 160, BENCH_STALLED_FRAME_KB 1000, BENCH_STALLED_WINDOW 16)
 */
import { join } from "node:path";
import type { RawData } from "ws";
import { runBenchmark } from "./lib/bench-runner.js";
import { startServman } from "./lib/child-processes.js";
import { sleep } from "./lib/concurrency.js";
import { envInt } from "./lib/env.js";
import { processesBelow, survivors } from "./lib/leftovers.js";
import { say } from "./lib/output.js";
import { BENCH_DIST } from "./lib/paths.js";
import { rssKb } from "./lib/proc-memory.js";
import { startRedis } from "./lib/redis.js";
import { metric, soloMetric } from "./lib/results.js";
import { writeBenchConfig } from "./lib/servman-config.js";
import { ServmanWire } from "./lib/wire-client.js";

const STALLED_SERVICE = join(BENCH_DIST, "services/stalled-service.js");
const FRAMES = envInt("BENCH_STALLED_FRAMES", 160);
/** Characters of `data` per frame: 1000 KiB stays under the default 1 MiB `maxFrameBytes`. */
const FRAME_CHARS = envInt("BENCH_STALLED_FRAME_KB", 1000, 1, 1023) * 1000;
/** Frames sent between two round trips to the healthy instance (which prove the node took them). */
const WINDOW = envInt("BENCH_STALLED_WINDOW", 16);
const SETTLE_MS = 1000;
const SAMPLE_MS = 20;

const mib = (kb: number) => Math.round(kb / 102.4) / 10;

await runBenchmark("stalled", `Stalled service: ${FRAMES} frames of ${FRAME_CHARS / 1000} KB to a process that stopped reading`, async (ctx) => {
  ctx.params = { frames: FRAMES, frameChars: FRAME_CHARS, window: WINDOW, settleMs: SETTLE_MS, maxQueuedBytes: "default (8 MiB)" };
  const redis = await startRedis();
  const config = writeBenchConfig({ redisUrl: redis.url, capacity: 10, tasks: { stalled: { command: [process.execPath, STALLED_SERVICE] } } });
  const server = await startServman(["start", "--config", config.path, "--port", "0"]);
  const client = await ServmanWire.connect(server.url!);
  try {
    const stalled = String((await client.request({ type: "launch", task: "stalled" })).instance);
    const healthy = String((await client.request({ type: "launch", task: "echo" })).instance);
    await client.request({ type: "join", instance: stalled });
    await client.request({ type: "join", instance: healthy });

    let dropped = 0;
    let droppedEvents = 0;
    let echoed: (() => void) | undefined;
    client.onFrame((data: RawData) => {
      const frame = JSON.parse(data.toString()) as { type?: string; action?: string; count?: number };
      if (frame.type === "dropped") {
        dropped += frame.count ?? 0;
        droppedEvents++;
      } else if (frame.action === "echo") echoed?.();
    });
    const echoText = JSON.stringify({ type: "send", instance: healthy, action: "echo", data: "ping" });
    /** Resolves once the healthy instance answered: the node has taken every frame sent before. */
    const roundTrip = () => new Promise<void>((resolve) => ((echoed = resolve), client.send(echoText)));

    await roundTrip();
    await sleep(SETTLE_MS);
    const idleKb = rssKb(server.pid);
    say(`node with the two instances idle: RSS ${mib(idleKb)} MiB`);

    let peakKb = idleKb;
    const sampler = setInterval(() => (peakKb = Math.max(peakKb, rssKb(server.pid))), SAMPLE_MS);
    const frameText = JSON.stringify({ type: "send", instance: stalled, action: "blob", data: "x".repeat(FRAME_CHARS) });
    const started = performance.now();
    let roundTrips = 0;
    try {
      for (let sent = 0; sent < FRAMES;) {
        const n = Math.min(WINDOW, FRAMES - sent);
        for (let i = 0; i < n; i++) client.send(frameText);
        sent += n;
        await roundTrip();
        roundTrips++;
      }
    } finally {
      clearInterval(sampler);
    }
    const floodMs = performance.now() - started;
    peakKb = Math.max(peakKb, rssKb(server.pid));
    await sleep(SETTLE_MS);
    const afterKb = rssKb(server.pid);
    const sentMb = (FRAMES * frameText.length) / 1e6;
    say(`sent ${Math.round(sentMb)} MB in ${Math.round(floodMs)} ms; dropped ${dropped} of ${FRAMES} (${droppedEvents} events); node RSS peak ${mib(peakKb)} MiB, after ${mib(afterKb)} MiB`);

    Object.assign(ctx.servman, { idleRssKb: idleKb, peakRssKb: peakKb, afterRssKb: afterKb, dropped, droppedEvents, floodMs: Math.round(floodMs), sentMb: Math.round(sentMb), roundTrips });
    ctx.floor = { idleRssKb: idleKb };
    ctx.metrics.push(
      metric("peakRss", "node RSS, peak during the flood vs idle", "MiB", "lower", mib(peakKb), mib(idleKb)),
      metric("afterRss", `node RSS ${SETTLE_MS} ms after the flood vs idle`, "MiB", "lower", mib(afterKb), mib(idleKb)),
      soloMetric("dropped", "frames dropped and told to the client", "frames", "higher", dropped),
      soloMetric("floodRate", "frames taken by the node per second", "frames/s", "higher", Math.round((FRAMES * 1000) / floodMs)),
    );
    ctx.check("the client heard dropped for what the node did not hold", dropped > 0 && dropped <= FRAMES, `${dropped} of ${FRAMES} in ${droppedEvents} events`);
    ctx.check("the healthy instance on the same node kept answering", roundTrips === Math.ceil(FRAMES / WINDOW), `${roundTrips} round trips during the flood`);
  } finally {
    await client.close();
    const below = processesBelow(server.pid);
    const code = await server.stop(60_000);
    const left = survivors(below);
    ctx.check("servman stopped cleanly and left no process", code === 0 && left.length === 0, `exit code ${code}, ${left.length} of ${below.length} still running`);
    config.remove();
    await redis.stop();
  }
});
