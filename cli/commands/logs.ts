/** `servman inspect ID` and `servman logs ID [--lines N] [--follow]`: what an instance is or was, and what it wrote. */
import type { ServmanConfig } from "../../src/config/options.js";
import { ServmanError } from "../../src/errors.js";
import { Keys } from "../../src/keys.js";
import { Launcher } from "../../src/launcher/launcher.js";
import { assertName } from "../../src/names.js";
import { checkRedis, createRedis } from "../../src/redis-connection.js";
import type { LogLine } from "../../src/registry/instance-logs.js";
import { UsageError, intFlag, type ParsedCommand } from "../cli-options.js";
import { onMessage, subscribe } from "../../src/pubsub.js";

/** Terminal control characters (C0 but tab, DEL, C1): a task's escape sequences could rewrite the operator's screen. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

/** Shows control characters as `\xNN`, so what a task wrote is printed, never obeyed. */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}

function formatter(raw: boolean): (line: LogLine) => string {
  return (line) => `${new Date(line.t).toISOString()} ${line.source.padEnd(6)} ${raw ? line.text : escapeControl(String(line.text))}\n`;
}

export async function inspectOrLogs(cmd: ParsedCommand, config: ServmanConfig, out: NodeJS.WritableStream): Promise<number> {
  if (cmd.positionals.length !== 1) throw new UsageError(`${cmd.command} takes exactly one instance ID`);
  const id = assertName(cmd.positionals[0], "instance");
  const lines = intFlag(cmd.values, "lines", 1) ?? 100;
  const format = formatter(cmd.values.raw === true);
  await checkRedis(config.redis);
  const launcher = new Launcher({ redis: config.redis, prefix: config.prefix });
  try {
    if (cmd.command === "inspect") {
      const found = await launcher.inspect(id);
      if (!found) throw new ServmanError("unknown_instance", `no instance ${JSON.stringify(id)}, live or ended within the hour`);
      out.write(JSON.stringify(found, null, 2) + "\n");
      return 0;
    }
    if (cmd.values.follow) {
      const found = await launcher.inspect(id);
      if (!found) throw new ServmanError("unknown_instance", `no instance ${JSON.stringify(id)}, live or ended within the hour`);
    }
    if (!cmd.values.follow) {
      for (const line of await launcher.logLines(id, lines)) out.write(format(line));
      return 0;
    }
    return await follow(id, lines, launcher, config, out, format);
  } finally {
    await launcher.close();
  }
}

/** Prints the last lines, then new ones as they come, until the instance ends (or Ctrl-C). */
async function follow(id: string, lines: number, launcher: Launcher, config: ServmanConfig, out: NodeJS.WritableStream, format: (line: LogLine) => string): Promise<number> {
  const sub = createRedis(config.redis, { name: "servman:logs-follow", blocking: true, subscriber: true });
  try {
    const early: string[] = [];
    let live: ((payload: string) => void) | null = null;
    onMessage(sub, (_channel: string, payload: string) => (live ? live(payload) : early.push(payload)));
    // Subscribed before reading the history, so no line falls between the two.
    await subscribe(sub, new Keys(config.prefix, { cluster: config.redis.kind === "cluster" }).instanceLogChannel(id));
    const history = await launcher.logLines(id, lines);
    const seen = new Set(history.map((l) => JSON.stringify(l)));
    for (const line of history) out.write(format(line));
    const now = await launcher.inspect(id);
    if (now?.live === false) {
      out.write(`-- instance ended: ${now.reason}\n`);
      return 0;
    }
    return await new Promise<number>((resolve) => {
      live = (payload) => {
        let value: LogLine | { end: string };
        try {
          value = JSON.parse(payload) as LogLine | { end: string };
        } catch {
          return;
        }
        if (typeof value !== "object" || value === null) return;
        if ("end" in value) {
          out.write(`-- instance ended: ${value.end}\n`);
          return resolve(0);
        }
        if (!seen.has(payload)) out.write(format(value));
      };
      for (const payload of early.splice(0)) live(payload);
      process.once("SIGINT", () => resolve(0));
    });
  } finally {
    sub.disconnect();
  }
}
