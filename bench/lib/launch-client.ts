/** Launching and stopping through the gateway, timed at the client, and where a launch's time went. */
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { mapLimit } from "./concurrency.js";
import { summarize } from "./stats.js";
import type { ServmanWire } from "./wire-client.js";

/** One launch, timed at the client (epoch ms for the server-side breakdown). */
export interface LaunchTrace {
  instance: string;
  sentAt: number;
  receivedAt: number;
  latencyMs: number;
}

/** Launches `task` through the gateway and resolves with the client-side timing. */
export async function launchOne(client: ServmanWire, task = "echo"): Promise<LaunchTrace> {
  const sentAt = Date.now();
  const start = performance.now();
  const reply = await client.request({ type: "launch", task, options: { timeoutMs: 300_000 } }, 400_000);
  return { instance: String(reply.instance), sentAt, receivedAt: Date.now(), latencyMs: performance.now() - start };
}

/** Stops `instances`, 16 at a time, each until `stopped`. */
export async function stopAll(client: ServmanWire, instances: readonly string[]): Promise<void> {
  await mapLimit(instances.length, 16, (i) => client.request({ type: "stop", instance: instances[i] }, 60_000));
}

/**
 * Where the time of each sequential launch of `task` went, from the BullMQ job (enqueued, picked up,
 * finished) and the registry record (readyAt): medians in ms. Clocks are this machine's.
 */
export async function breakdown(redisUrl: string, prefix: string, traces: readonly LaunchTrace[], task = "echo"): Promise<Record<string, number>> {
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue(task, { connection, prefix: `${prefix}:launch` });
  try {
    const jobs = await queue.getJobs(["completed"], 0, -1);
    const byInstance = new Map(jobs.map((j) => [String((j.data as { instance?: unknown }).instance), j]));
    const parts: Record<string, number[]> = { "client -> enqueued": [], "queue wait": [], "picked up -> ready": [], "ready -> client": [], total: [] };
    for (const t of traces) {
      const job = byInstance.get(t.instance);
      const readyAt = Number(await connection.hget(`{${prefix}}:instance:${t.instance}`, "readyAt"));
      if (!job || !job.processedOn || !readyAt) continue;
      parts["client -> enqueued"].push(job.timestamp - t.sentAt);
      parts["queue wait"].push(job.processedOn - job.timestamp);
      parts["picked up -> ready"].push(readyAt - job.processedOn);
      parts["ready -> client"].push(t.receivedAt - readyAt);
      parts.total.push(t.receivedAt - t.sentAt);
    }
    return Object.fromEntries(Object.entries(parts).map(([k, v]) => [k, summarize(v).p50Ms]));
  } finally {
    await queue.close();
    connection.disconnect();
  }
}
