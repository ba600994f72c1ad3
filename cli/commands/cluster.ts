/** `servman launch | ls | stop | nodes`: admin commands that reach the cluster through Redis. */
import { Launcher } from "../../src/launcher/launcher.js";
import type { ServmanConfig } from "../../src/config/options.js";
import { checkRedis } from "../../src/redis-connection.js";
import type { InstanceRecord } from "../../src/registry/instance-registry.js";
import type { NodeRecord } from "../../src/registry/node-registry.js";
import { UsageError, intFlag, type ParsedCommand } from "../cli-options.js";

function age(since: number): string {
  const s = Math.max(0, Math.round((Date.now() - since) / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
}

/** Formats rows as aligned columns. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  return (
    [header, ...rows]
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]))
          .join("  ")
          .trimEnd(),
      )
      .join("\n") + "\n"
  );
}

function instancesTable(list: InstanceRecord[]): string {
  if (list.length === 0) return "no instances\n";
  return table(
    ["INSTANCE", "TASK", "NODE", "STATE", "OWNER", "AGE"],
    list.map((r) => [r.instance, r.task, r.node || "-", r.state, r.ownerUser ?? (r.owner ? `session:${r.owner.slice(0, 8)}` : "admin"), age(r.created)]),
  );
}

function nodesTable(list: NodeRecord[]): string {
  if (list.length === 0) return "no live nodes\n";
  return table(
    ["NODE", "HOST", "PID", "RUNNING", "CAPACITY", "TASKS", "STATE", "UP"],
    list.map((n) => [n.id, n.host, String(n.pid), String(n.running), String(n.capacity), n.tasks.join(","), n.draining ? "draining" : "serving", age(n.started)]),
  );
}

export async function cluster(cmd: ParsedCommand, config: ServmanConfig, out: NodeJS.WritableStream): Promise<number> {
  const { command, positionals, values } = cmd;
  const wanted = command === "launch" || command === "stop" || command === "drain" ? 1 : 0;
  if (positionals.length !== wanted) {
    throw new UsageError(wanted === 1 ? `${command} takes exactly one ${command === "launch" ? "TASK" : command === "drain" ? "NODE" : "ID"}` : `${command} takes no arguments`);
  }
  let args: Record<string, unknown> = {};
  if (command === "launch" && typeof values.args === "string") {
    try {
      args = JSON.parse(values.args) as Record<string, unknown>;
    } catch {
      throw new UsageError("--args expects a JSON object");
    }
    if (typeof args !== "object" || args === null || Array.isArray(args)) throw new UsageError("--args expects a JSON object");
  }
  const timeoutMs = intFlag(values, "timeout", 1);
  await checkRedis(config.redis);
  const launcher = new Launcher({ redis: config.redis, prefix: config.prefix });
  try {
    switch (command) {
      case "launch": {
        const result = await launcher.launch(positionals[0], {
          args,
          ...(typeof values.id === "string" ? { instance: values.id } : {}),
          ...(timeoutMs !== undefined ? { timeoutMs } : {}),
        });
        out.write(JSON.stringify(result) + "\n");
        return 0;
      }
      case "stop":
        await launcher.stop(positionals[0]);
        out.write(JSON.stringify({ instance: positionals[0], stopped: true }) + "\n");
        return 0;
      case "drain": {
        const deadline = intFlag(values, "deadline", 1);
        await launcher.drainNode(positionals[0], deadline);
        out.write(JSON.stringify({ node: positionals[0], drained: true }) + "\n");
        return 0;
      }
      case "ls": {
        const list = await launcher.list();
        out.write(values.json ? JSON.stringify(list) + "\n" : instancesTable(list));
        return 0;
      }
      default: {
        const list = await launcher.nodes();
        out.write(values.json ? JSON.stringify(list) + "\n" : nodesTable(list));
        return 0;
      }
    }
  } finally {
    await launcher.close();
  }
}
