/**
 * A node's BullMQ workers: one per task it offers, each on a blocking Redis connection of its
 * own, all paused while the node takes no launches (full, busy or draining;
 * docs/launch-queue.md).
 */
import { DelayedError, Worker, type Job } from "bullmq";
import type { Logger } from "pino";
import type { NodeConfig } from "../src/config/options.js";
import type { RedisTarget } from "../src/config/redis-target.js";
import type { Keys } from "../src/keys.js";
import type { LaunchJobData, LaunchJobResult } from "../src/launch/launch-job.js";
import { createRedis } from "../src/redis-connection.js";

/** How long a job handed back by a full node waits before any node may take it again. */
const HAND_BACK_MS = 100;

/** Hands a job back to the queue, briefly delayed, for any node to take (BullMQ's `DelayedError`). */
export async function handBack(job: Job<LaunchJobData>, token: string | undefined): Promise<never> {
  await job.moveToDelayed(Date.now() + HAND_BACK_MS, token);
  throw new DelayedError();
}

/** What the workers are built from. */
export interface LaunchWorkersOptions {
  redis: RedisTarget;
  nodeId: string;
  keys: Keys;
  node: Pick<NodeConfig, "capacity" | "launchConcurrency" | "lockDurationMs">;
  logger: Logger;
  /** Runs one launch job. */
  process(job: Job<LaunchJobData, LaunchJobResult>, token: string | undefined): Promise<LaunchJobResult>;
}

export class LaunchWorkers {
  private readonly workers: Worker<LaunchJobData, LaunchJobResult>[] = [];

  constructor(private readonly options: LaunchWorkersOptions) {}

  /** Starts one worker for each of `tasks`. */
  start(tasks: Iterable<string>): void {
    const { nodeId, keys, node, logger } = this.options;
    for (const task of tasks) {
      const connection = createRedis(this.options.redis, { name: `servman:node-worker:${nodeId}`, logger, blocking: true });
      const worker = new Worker<LaunchJobData, LaunchJobResult>(keys.queueName(task), (job, token) => this.options.process(job, token), {
        connection,
        prefix: keys.queuePrefix(),
        concurrency: Math.max(1, Math.min(node.launchConcurrency, node.capacity)),
        autorun: node.capacity > 0,
        // A launch outliving the lock is renewed; a node that died lets its job run again elsewhere.
        lockDuration: node.lockDurationMs,
        stalledInterval: node.lockDurationMs,
      });
      worker.on("error", (err) => logger.warn({ err, task }, "launch worker error"));
      worker.on("closed", () => connection.disconnect());
      this.workers.push(worker);
    }
  }

  /** Takes jobs (`open`) or pauses, letting the jobs in progress finish. */
  setOpen(open: boolean): void {
    for (const worker of this.workers) {
      if (!open && !worker.isPaused()) void worker.pause(true);
      else if (open && worker.isPaused()) void worker.resume();
    }
  }

  /** Closes every worker; `force`: without waiting for the jobs in progress. */
  async close(force: boolean): Promise<void> {
    await Promise.allSettled(this.workers.map((w) => w.close(force)));
  }
}
