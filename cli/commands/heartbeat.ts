/**
 * `servman heartbeat N`: N client/service pairs, each launching its own heartbeat instance,
 * exchanging pings and pongs, and stopping it. Self-contained unless given `--gateway URL`: it
 * then starts a gateway and a node of its own under a private key prefix, and removes both, every
 * process and every key, before it exits.
 */
import { fileURLToPath } from "node:url";
import { dirname } from "node:path";
import { nanoid } from "nanoid";
import type { Logger } from "pino";
import { HeartbeatClient, type HeartbeatRun } from "../../examples/heartbeat/heartbeat-client.js";
import { Gateway } from "../../gateway/gateway.js";
import { ServmanNode } from "../../nodes/servman-node.js";
import { mintTicket } from "../../src/auth/tickets.js";
import { resolveTask } from "../../src/config/load-config.js";
import { DEFAULTS, type ServmanConfig } from "../../src/config/options.js";
import { isCluster } from "../../src/pubsub.js";
import { Keys } from "../../src/keys.js";
import { checkRedis, createRedis } from "../../src/redis-connection.js";
import { UsageError, intFlag, type ParsedCommand } from "../cli-options.js";

const SERVICE = fileURLToPath(new URL("../../examples/heartbeat/service.js", import.meta.url));

export interface HeartbeatSummary {
  pairs: number;
  ok: number;
  failed: number;
  pings: number;
  pongs: number;
  rttP50Ms: number;
  rttP99Ms: number;
  durationMs: number;
  errors: Record<string, number>;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * (sorted.length - 1)))];
}

/** The private deployment heartbeat runs when no gateway is given. */
function privateConfig(base: ServmanConfig, pairs: number): ServmanConfig {
  const prefix = `${base.prefix}-heartbeat-${nanoid(8).replaceAll(/[^A-Za-z0-9]/g, "x")}`;
  const task = resolveTask("heartbeat", { module: SERVICE, readyTimeoutMs: 60_000 }, null, dirname(SERVICE));
  return {
    ...base,
    prefix,
    // Default limits, with room for every pair's connection from this one address.
    gateway: {
      host: "127.0.0.1",
      port: 0,
      limits: { ...DEFAULTS.limits, maxConnectionsPerIp: Math.max(DEFAULTS.limits.maxConnectionsPerIp, pairs + 10) },
      insecure: false,
      resumeWindowMs: DEFAULTS.resumeWindowMs,
      allowedHosts: [],
      allowedOrigins: [],
      fanout: "gateway",
    },
    // A private gateway on loopback, reached only by this process's own clients.
    auth: { adminTokens: [] },
    node: { capacity: Math.max(1, pairs), launchConcurrency: base.node.launchConcurrency, shutdownDeadlineMs: 5_000, lockDurationMs: base.node.lockDurationMs },
    tasks: { heartbeat: task },
  };
}

async function deleteKeys(config: ServmanConfig): Promise<void> {
  const redis = createRedis(config.redis, { name: "servman:heartbeat-cleanup" });
  try {
    // On a cluster, each master holds its own keys: every one of them is scanned.
    const servers = isCluster(redis) ? redis.nodes("master") : [redis];
    for (const server of servers) {
      for (const pattern of new Keys(config.prefix).everything()) {
        let cursor = "0";
        do {
          const [next, keys] = await server.scan(cursor, "MATCH", pattern, "COUNT", 1000);
          cursor = next;
          // One key per command: on a cluster, keys of different slots cannot go in one UNLINK.
          if (keys.length > 0) await Promise.all(keys.map((key) => server.unlink(key)));
        } while (cursor !== "0");
      }
    }
  } finally {
    await redis.quit();
  }
}

async function runPair(url: string, pings: number, intervalMs: number, launchTimeoutMs: number, secret: string | undefined): Promise<HeartbeatRun> {
  // Against a deployment with tickets, each client gets its own, allowed to launch heartbeat only.
  const ticketed = secret === undefined ? url : `${url}${url.includes("?") ? "&" : "?"}ticket=${(await mintTicket(secret, { sub: `heartbeat-${nanoid(8)}`, tasks: ["heartbeat"] })).ticket}`;
  const client = new HeartbeatClient(ticketed);
  try {
    await client.connect();
    return await client.run({ pings, intervalMs, launchTimeoutMs });
  } catch (err) {
    return { rtts: [], error: err instanceof Error ? err.message : String(err) };
  } finally {
    await client.close();
  }
}

export async function heartbeat(cmd: ParsedCommand, base: ServmanConfig, logger: Logger, out: NodeJS.WritableStream): Promise<number> {
  if (cmd.positionals.length !== 1) throw new UsageError("heartbeat takes the number of pairs: servman heartbeat N");
  const pairs = Number(cmd.positionals[0]);
  if (!Number.isInteger(pairs) || pairs < 1) throw new UsageError(`N must be a positive integer, got ${JSON.stringify(cmd.positionals[0])}`);
  const pings = intFlag(cmd.values, "pings") ?? 10;
  const intervalMs = intFlag(cmd.values, "interval") ?? 1000;
  // Forks are CPU-bound: on a small machine hundreds of launches queue behind each other.
  const launchTimeoutMs = Math.max(30_000, pairs * 150);
  const external = typeof cmd.values.gateway === "string" ? cmd.values.gateway : undefined;

  let gateway: Gateway | undefined;
  let node: ServmanNode | undefined;
  const config = external ? base : privateConfig(base, pairs);
  let url = external;
  const started = performance.now();
  let results: HeartbeatRun[] = [];
  try {
    if (!external) {
      await checkRedis(config.redis);
      node = new ServmanNode({ config, logger });
      await node.start();
      gateway = new Gateway({ config, logger, processMetrics: false });
      await gateway.listen();
      url = gateway.url;
    }
    const secret = external ? base.auth.secret : undefined;
    results = await Promise.all(Array.from({ length: pairs }, () => runPair(url!, pings, intervalMs, launchTimeoutMs, secret)));
  } finally {
    await gateway?.close();
    await node?.close();
    if (!external) await deleteKeys(config);
  }
  const rtts = results.flatMap((r) => r.rtts).sort((a, b) => a - b);
  const errors: Record<string, number> = {};
  for (const r of results) if (r.error !== null) errors[r.error] = (errors[r.error] ?? 0) + 1;
  const ok = results.filter((r) => r.error === null).length;
  const summary: HeartbeatSummary = {
    pairs,
    ok,
    failed: pairs - ok,
    pings: pairs * pings,
    pongs: rtts.length,
    rttP50Ms: Number(percentile(rtts, 0.5).toFixed(3)),
    rttP99Ms: Number(percentile(rtts, 0.99).toFixed(3)),
    durationMs: Math.round(performance.now() - started),
    errors,
  };
  if (cmd.values.json) {
    out.write(JSON.stringify(summary) + "\n");
  } else {
    out.write(
      `heartbeat: ${summary.ok}/${pairs} pairs ok, ${summary.failed} failed; ` +
        `${summary.pongs}/${summary.pings} pongs; rtt p50 ${summary.rttP50Ms.toFixed(2)} ms, p99 ${summary.rttP99Ms.toFixed(2)} ms; ` +
        `${(summary.durationMs / 1000).toFixed(1)} s\n`,
    );
    for (const [error, count] of Object.entries(errors)) out.write(`  ${count} x ${error}\n`);
  }
  return summary.failed === 0 ? 0 : 1;
}
