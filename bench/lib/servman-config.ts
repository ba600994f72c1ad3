/**
 * The configuration file the benchmarks give the real `servman` program: a private prefix, the
 * bench's echo service as a `module` task, and sizes large enough that no limit of the default
 * configuration is what gets measured.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ECHO_SERVICE } from "./paths.js";

export interface BenchConfigOptions {
  redisUrl: string;
  /** Live instances the node may hold. */
  capacity: number;
  /** Launches the node runs at once. Default: Servman's default (8). */
  launchConcurrency?: number;
  /** Extra `gateway.limits` entries. */
  limits?: Record<string, number>;
  /** Extra `gateway` keys (beside host, port and limits). */
  gateway?: Record<string, unknown>;
  /** Run `echo` as a `command` task (`node echo-service.js`, NDJSON on stdio). Default: `module`. */
  command?: boolean;
  /** More tasks, beside `echo` (the same defaults apply: see below). */
  tasks?: Record<string, Record<string, unknown>>;
}

/** A written configuration file and the folder to delete afterwards. */
export interface BenchConfig {
  path: string;
  prefix: string;
  /** Deletes the temporary folder. */
  remove(): void;
}

/** Writes a configuration with the task `echo` (bench/services/echo-service.ts, a `module` task unless `command`) and `tasks`. */
export function writeBenchConfig(options: BenchConfigOptions): BenchConfig {
  const dir = mkdtempSync(join(tmpdir(), "servman-bench-"));
  const path = join(dir, "servman.json");
  const prefix = `bench-${process.pid}`;
  const file = {
    redis: options.redisUrl,
    prefix,
    gateway: {
      host: "127.0.0.1",
      port: 0,
      // One client IP opens every connection here: per-IP limits must not be what is measured.
      limits: { maxConnectionsPerIp: 1_000_000, messagesPerSecond: 1_000_000, burst: 1_000_000, ...(options.limits ?? {}) },
      ...(options.gateway ?? {}),
    },
    node: {
      capacity: options.capacity,
      ...(options.launchConcurrency !== undefined ? { launchConcurrency: options.launchConcurrency } : {}),
      shutdownDeadlineMs: 5_000,
    },
    // A loaded 2-core machine forks slowly: a launch must not time out because of the benchmark.
    tasks: Object.fromEntries(
      Object.entries({ echo: options.command ? { command: [process.execPath, ECHO_SERVICE] } : { module: ECHO_SERVICE }, ...(options.tasks ?? {}) }).map(([name, task]) => [
        name,
        { readyTimeoutMs: 120_000, ...task },
      ]),
    ),
  };
  writeFileSync(path, JSON.stringify(file, null, 2));
  return { path, prefix, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
