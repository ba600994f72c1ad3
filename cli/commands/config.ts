/**
 * `servman config schema` prints the configuration file's JSON Schema, reading no configuration;
 * `servman config check` loads the configuration (file and environment) as a server would and
 * says whether it is usable (docs/cli.md#servman-config).
 */
import { readTlsFiles } from "../../gateway/servable.js";
import { configJsonSchema } from "../../src/config/json-schema.js";
import type { ServmanConfig } from "../../src/config/options.js";
import { UsageError, type ParsedCommand } from "../cli-options.js";

const SUBCOMMANDS = 'config takes "schema" or "check": servman config schema | servman config check [--config FILE]';

/**
 * Runs `config SUB`. `load` reads the configuration, and is called only by `check`.
 * @throws ConfigError from `load` or the TLS files (the CLI exits 2), UsageError for a bad subcommand
 */
export function configCommand(cmd: ParsedCommand, load: () => ServmanConfig, out: NodeJS.WritableStream): number {
  const [sub, ...rest] = cmd.positionals;
  if (rest.length > 0 || (sub !== "schema" && sub !== "check")) throw new UsageError(SUBCOMMANDS);
  if (sub === "schema") {
    out.write(`${JSON.stringify(configJsonSchema(), null, 2)}\n`);
    return 0;
  }
  const config = load();
  // What a gateway checks of the TLS files at startup; the bind address depends on the role and flags, so it is left to them.
  if (config.gateway.tls) readTlsFiles(config.gateway.tls, config.file);
  const tasks = Object.keys(config.tasks);
  out.write(`ok: ${config.file ?? "no file"} with the environment, ${tasks.length === 0 ? "no tasks" : `tasks ${tasks.join(", ")}`}\n`);
  return 0;
}
