/**
 * The `servman` program (docs/cli.md). Exit codes: 0 ok, 1 failed, 2 usage or configuration error.
 */
import { loadConfig } from "../src/config/load-config.js";
import { ConfigError, toServmanError } from "../src/errors.js";
import { createLogger } from "../src/logger.js";
import { overridesOf, parseCommand, UsageError } from "./cli-options.js";
import { cluster } from "./commands/cluster.js";
import { configCommand } from "./commands/config.js";
import { heartbeat } from "./commands/heartbeat.js";
import { inspectOrLogs } from "./commands/logs.js";
import { serve } from "./commands/serve.js";
import { ticket } from "./commands/ticket.js";
import { USAGE } from "./usage.js";
import { packageVersion } from "./version.js";

/** Runs one command line and resolves with the exit code. Never throws. */
export async function main(argv: string[]): Promise<number> {
  let command = "help";
  try {
    const parsed = parseCommand(argv);
    command = parsed.command;
    if (command === "help" || parsed.values.help) {
      process.stdout.write(USAGE);
      return 0;
    }
    // Before the configuration is read: a broken or missing one must not hide the version.
    if (parsed.values.version) {
      process.stdout.write(`${packageVersion()}\n`);
      return 0;
    }
    const values = parsed.values;
    // `launch --id` names the instance, not this program's node.
    const overrides = overridesOf(command === "launch" ? { ...values, id: undefined } : values);
    const level = typeof values["log-level"] === "string" ? values["log-level"] : undefined;
    const quietByDefault = command !== "start" && command !== "gateway" && command !== "node";
    const logger = createLogger(level ?? process.env.SERVMAN_LOG_LEVEL ?? (quietByDefault ? "warn" : "info"));
    const load = () => loadConfig(overrides, process.env, process.cwd(), (message) => logger.warn(message));
    // `config schema` reads no configuration, so it works whatever state the configuration is in.
    if (command === "config") return configCommand(parsed, load, process.stdout);
    const config = load();
    switch (command) {
      case "start":
      case "gateway":
      case "node":
        return await serve(command, config, logger);
      case "heartbeat":
        return await heartbeat(parsed, config, logger, process.stdout);
      case "ticket":
        return await ticket(parsed, config, process.stdout);
      case "inspect":
      case "logs":
        return await inspectOrLogs(parsed, config, process.stdout);
      default:
        return await cluster(parsed, config, process.stdout);
    }
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`servman: ${err.message.replace(/^configuration: /, "")}\nRun "servman --help" for usage.\n`);
      return 2;
    }
    if (err instanceof ConfigError) {
      process.stderr.write(`servman: bad configuration: ${err.message}\n`);
      return 2;
    }
    const e = toServmanError(err);
    // Only a real bug gets its stack; everything else (Redis unreachable included) its code.
    process.stderr.write(e.code === "internal" && err instanceof Error ? `servman ${command}: ${err.stack ?? err.message}\n` : `servman ${command}: ${e.code}: ${e.message}\n`);
    return 1;
  }
}
