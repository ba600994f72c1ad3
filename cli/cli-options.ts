/**
 * Command-line parsing with node:util's parseArgs (no dependency needed), strict per command:
 * an unknown flag is a usage error (exit 2), never ignored.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import type { ConfigOverrides } from "../src/config/load-config.js";
import { ConfigError } from "../src/errors.js";

type OptionSpec = NonNullable<ParseArgsConfig["options"]>;

const COMMON: OptionSpec = {
  config: { type: "string" },
  redis: { type: "string" },
  prefix: { type: "string" },
  "log-level": { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean", short: "v" },
};
const GATEWAY: OptionSpec = { host: { type: "string" }, port: { type: "string" }, insecure: { type: "boolean" } };
const NODE: OptionSpec = { capacity: { type: "string" }, id: { type: "string" } };

/** The flags each command accepts beyond the common ones. */
const COMMAND_OPTIONS: Record<string, OptionSpec> = {
  start: { ...GATEWAY, ...NODE },
  gateway: GATEWAY,
  node: NODE,
  launch: { args: { type: "string" }, id: { type: "string" }, timeout: { type: "string" } },
  ls: { json: { type: "boolean" } },
  stop: {},
  drain: { deadline: { type: "string" } },
  inspect: {},
  logs: { lines: { type: "string" }, follow: { type: "boolean", short: "f" }, raw: { type: "boolean" } },
  nodes: { json: { type: "boolean" } },
  ticket: { tasks: { type: "string" }, instances: { type: "string" }, admin: { type: "boolean" }, ttl: { type: "string" }, json: { type: "boolean" } },
  heartbeat: { pings: { type: "string" }, interval: { type: "string" }, gateway: { type: "string" }, json: { type: "boolean" } },
  config: {},
};

export interface ParsedCommand {
  command: string;
  positionals: string[];
  values: Record<string, string | boolean | undefined>;
}

/** A usage error: the CLI prints it with a hint and exits 2. */
export class UsageError extends ConfigError {
  constructor(message: string) {
    super(null, "", message);
  }
}

export function parseCommand(argv: string[]): ParsedCommand {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    return { command: "help", positionals: [], values: {} };
  }
  if (command === "--version" || command === "-v") return { command: "version", positionals: [], values: { version: true } };
  const extra = COMMAND_OPTIONS[command];
  if (!extra) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
  try {
    const { values, positionals } = parseArgs({ args: rest, options: { ...COMMON, ...extra }, allowPositionals: true, strict: true });
    return { command, positionals, values: values as ParsedCommand["values"] };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Parses a non-negative integer flag, or throws a usage error naming it. */
export function intFlag(values: ParsedCommand["values"], name: string, min = 0): number | undefined {
  const raw = values[name];
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (typeof raw !== "string" || !Number.isInteger(n) || n < min) throw new UsageError(`--${name} expects an integer >= ${min}, got ${JSON.stringify(raw)}`);
  return n;
}

/** The configuration overrides given by flags. */
export function overridesOf(values: ParsedCommand["values"]): ConfigOverrides {
  const o: ConfigOverrides = {};
  if (typeof values.config === "string") o.config = values.config;
  if (typeof values.redis === "string") o.redis = values.redis;
  if (typeof values.prefix === "string") o.prefix = values.prefix;
  if (typeof values.host === "string") o.host = values.host;
  const port = intFlag(values, "port");
  if (port !== undefined) {
    if (port > 65535) throw new UsageError("--port expects 0-65535");
    o.port = port;
  }
  const capacity = intFlag(values, "capacity");
  if (capacity !== undefined) o.capacity = capacity;
  if (typeof values.id === "string") o.id = values.id;
  if (values.insecure === true) o.insecure = true;
  return o;
}
