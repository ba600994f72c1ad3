/**
 * Loads the configuration once at startup (docs/configuration.md): file, then environment, then flags, validated
 * against one schema and frozen. Every problem is a ConfigError naming the file and key path.
 */
import { accessSync, constants, existsSync, readFileSync, statSync } from "node:fs";
import { delimiter, dirname, join, resolve } from "node:path";
import { ConfigError } from "../errors.js";
import { NAME_PATTERN, PREFIX_PATTERN } from "../names.js";
import { compile } from "../protocol/validate.js";
import { applyEnvironment, type EnvironmentLayer } from "./env-overrides.js";
import { DEFAULTS, type AuthConfig, type ServmanConfig, type TaskConfig } from "./options.js";
import { parseRedisString, redactUrl, redisTargetOf } from "./redis-target.js";
import { ConfigFileSchema, RedisClusterSchema, RedisSentinelSchema, type ConfigFile, type TaskFileEntry } from "./schema.js";

/** Values given on the command line; they win over environment and file. */
export interface ConfigOverrides {
  config?: string;
  redis?: string;
  prefix?: string;
  host?: string;
  port?: number;
  capacity?: number;
  id?: string;
  insecure?: boolean;
}

const validateFile = compile(ConfigFileSchema);
const validateCluster = compile(RedisClusterSchema);
const validateSentinel = compile(RedisSentinelSchema);

/** What is wrong with `redis`, said for the form it looks like ("expected union value" says nothing). */
function redisProblem(file: string | null, value: unknown): ConfigError {
  if (typeof value === "string") return new ConfigError(file, "redis", `expected redis://, rediss://, redis+cluster:// or redis+sentinel://, got ${JSON.stringify(redactUrl(value).slice(0, 64))}`);
  const form = typeof value === "object" && value !== null && "cluster" in value ? validateCluster : typeof value === "object" && value !== null && "sentinels" in value ? validateSentinel : null;
  const problem = form?.problem(value);
  if (!form || !problem) return new ConfigError(file, "redis", 'expected a URL, {"cluster": [URL, ...]} or {"sentinels": ["HOST:PORT", ...], "name": MASTER}');
  return new ConfigError(file, problem.path === "" ? "redis" : `redis.${problem.path}`, problem.message);
}

/** The shortest liveness timeout: a few of the SDK's 2 s heartbeats must fit in it. */
const MIN_LIVENESS_MS = 5_000;

function readFile(file: string): unknown {
  if (!existsSync(file)) throw new ConfigError(file, "", "file does not exist");
  try {
    return JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    throw new ConfigError(file, "", `not valid JSON (${(err as Error).message})`, { cause: err });
  }
}

/** The file with the environment over it, checked once; a problem names the variable when one set the key. */
function validated(file: string | null, layer: EnvironmentLayer): ConfigFile {
  const value = layer.data;
  const problem = validateFile.problem(value);
  if (problem !== null && (problem.path === "redis" || problem.path.startsWith("redis."))) throw layer.blame(redisProblem(file, (value as { redis?: unknown }).redis));
  if (problem !== null) throw layer.blame(new ConfigError(file, problem.path, problem.message));
  return value as ConfigFile;
}

/** Which file to read: flag, then $SERVMAN_CONFIG, then conf/servman.json if present. */
function chooseFile(overrides: ConfigOverrides, env: NodeJS.ProcessEnv, cwd: string): string | null {
  const named = overrides.config ?? env.SERVMAN_CONFIG;
  if (named !== undefined && named !== "") return resolve(cwd, named);
  const fallback = resolve(cwd, "conf/servman.json");
  return existsSync(fallback) ? fallback : null;
}

function envInt(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new ConfigError(null, `$${name}`, `expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`);
  }
  return n;
}

/** The secret at least this long, like the file's schema asks (docs/configuration.md#auth). */
const MIN_SECRET = 16;

/**
 * `auth` from the file, with `$SERVMAN_AUTH_SECRET` and `$SERVMAN_ADMIN_TOKENS` (comma-separated)
 * over it: a container gets its secrets from its environment, not from a file in its image.
 */
function authFrom(env: NodeJS.ProcessEnv, file: { secret?: string; adminTokens?: string[] } | undefined): AuthConfig {
  const secret = env.SERVMAN_AUTH_SECRET || undefined;
  if (secret !== undefined && secret.length < MIN_SECRET) throw new ConfigError(null, "$SERVMAN_AUTH_SECRET", `expected at least ${MIN_SECRET} characters`);
  const tokens = env.SERVMAN_ADMIN_TOKENS
    ? env.SERVMAN_ADMIN_TOKENS.split(",")
        .map((t) => t.trim())
        .filter((t) => t !== "")
    : undefined;
  // The value is a secret: the message names the rule, never the token.
  if (tokens?.some((t) => t.length < MIN_SECRET)) throw new ConfigError(null, "$SERVMAN_ADMIN_TOKENS", `expected comma-separated tokens of at least ${MIN_SECRET} characters each`);
  const chosen = secret ?? file?.secret;
  return { ...(chosen !== undefined ? { secret: chosen } : {}), adminTokens: [...(tokens ?? file?.adminTokens ?? [])] };
}

function checked(value: string | undefined, pattern: RegExp, where: string, expected: string): string | undefined {
  if (value === undefined || value === "") return undefined;
  if (!pattern.test(value)) throw new ConfigError(null, where, `expected ${expected}, got ${JSON.stringify(value)}`);
  return value;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Finds `program` on PATH the way execvp would, or returns null. */
function findOnPath(program: string, env: NodeJS.ProcessEnv = process.env): string | null {
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, program);
    if (isExecutable(candidate)) return candidate;
  }
  return null;
}

/**
 * Resolves one task entry of the file: defaults applied, paths made absolute, the module or the
 * program checked to exist. Exported for programs that build a task themselves (heartbeat).
 */
export function resolveTask(name: string, entry: TaskFileEntry, file: string | null, baseDir: string, env: NodeJS.ProcessEnv = process.env): TaskConfig {
  const at = `tasks.${name}`;
  if ((entry.module === undefined) === (entry.command === undefined)) {
    throw new ConfigError(file, at, 'expected exactly one of "module" (a JavaScript file) or "command" (an argv array)');
  }
  if (entry.livenessTimeoutMs !== undefined && entry.livenessTimeoutMs > 0 && entry.livenessTimeoutMs < MIN_LIVENESS_MS) {
    throw new ConfigError(file, `${at}.livenessTimeoutMs`, `expected 0 (off) or at least ${MIN_LIVENESS_MS}: the service SDK sends a heartbeat every 2 s`);
  }
  if (entry.warmMax !== undefined && entry.warmMax < (entry.warm ?? 0)) {
    throw new ConfigError(file, `${at}.warmMax`, `expected at least warm (${entry.warm ?? 0}): a warm pool grows from warm up to warmMax, got ${entry.warmMax}`);
  }
  if (entry.isolation === "shared" && entry.command !== undefined) {
    throw new ConfigError(
      file,
      `${at}.isolation`,
      'expected "process" for a command task: only a module task can share a process (isolation "shared" runs several instances as objects of one Node.js process)',
    );
  }
  if (entry.isolation === "shared" && entry.warmMax !== undefined && entry.warmMax !== (entry.warm ?? 0)) {
    throw new ConfigError(file, `${at}.warmMax`, `expected no warmMax (or one equal to warm) with isolation "shared": warm counts host processes kept ready, and does not grow`);
  }
  const common = {
    name,
    restart: entry.restart ?? "never",
    maxRestarts: entry.maxRestarts ?? DEFAULTS.maxRestarts,
    attempts: entry.attempts ?? DEFAULTS.attempts,
    readyTimeoutMs: entry.readyTimeoutMs ?? DEFAULTS.readyTimeoutMs,
    livenessTimeoutMs: entry.livenessTimeoutMs ?? DEFAULTS.livenessTimeoutMs,
    idleTimeoutMs: entry.idleTimeoutMs,
    emptyTimeoutMs: entry.emptyTimeoutMs,
    maxLifetimeMs: entry.maxLifetimeMs,
    maxMemoryMb: entry.maxMemoryMb,
    relaunch: entry.relaunch ?? false,
    warm: entry.warm ?? 0,
    warmMax: entry.warmMax ?? entry.warm ?? 0,
    maxQueuedBytes: entry.maxQueuedBytes ?? DEFAULTS.maxQueuedBytes,
    env: { ...(entry.env ?? {}) },
    isolation: entry.isolation ?? "process",
    instancesPerProcess: entry.instancesPerProcess ?? DEFAULTS.instancesPerProcess,
  };
  if (entry.module !== undefined) {
    const module = resolve(baseDir, entry.module);
    if (!existsSync(module) || !statSync(module).isFile()) {
      throw new ConfigError(file, `${at}.module`, `expected an existing JavaScript file, ${module} does not exist`);
    }
    return { ...common, kind: "module", module };
  }
  const command = entry.command!.map((arg) => (arg.startsWith("./") || arg.startsWith("../") ? resolve(baseDir, arg) : arg));
  const program = command[0];
  if (!program.includes("/")) {
    const found = findOnPath(program, env);
    if (found === null) throw new ConfigError(file, `${at}.command.0`, `expected a program on PATH, ${JSON.stringify(program)} is not`);
  } else if (!isExecutable(resolve(baseDir, program))) {
    throw new ConfigError(file, `${at}.command.0`, `expected an executable file, ${program} is not one`);
  }
  return { ...common, kind: "command", command };
}

/** `fn()`, its ConfigError naming the variable that set the key in question, if one did. */
function blamed<T>(layer: EnvironmentLayer, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw layer.blame(err);
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/**
 * Loads, validates and freezes the configuration. Throws ConfigError (the CLI exits 2 on it).
 * @param overrides flags from the command line
 * @param env the environment (SERVMAN_* variables)
 * @param cwd where relative flag paths, `_FILE` variables and the default `conf/servman.json` are looked up
 * @param warn told about each `SERVMAN_*` variable that sets nothing (default: a process warning)
 */
export function loadConfig(
  overrides: ConfigOverrides = {},
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
  warn: (message: string) => void = (message) => process.emitWarning(message),
): ServmanConfig {
  const file = chooseFile(overrides, env, cwd);
  const layer = applyEnvironment(file === null ? {} : readFile(file), env, cwd);
  const data = validated(file, layer);
  for (const warning of layer.warnings) warn(warning);
  const baseDir = file === null ? cwd : dirname(file);

  const envRedis = env.SERVMAN_REDIS_URL === "" ? undefined : env.SERVMAN_REDIS_URL;
  const redis =
    overrides.redis !== undefined
      ? parseRedisString(overrides.redis, "--redis")
      : envRedis !== undefined
        ? parseRedisString(envRedis, "$SERVMAN_REDIS_URL")
        : data.redis !== undefined
          ? blamed(layer, () => redisTargetOf(data.redis!, file))
          : parseRedisString(DEFAULTS.redis, "redis");
  const prefix = overrides.prefix ?? checked(env.SERVMAN_PREFIX, PREFIX_PATTERN, "$SERVMAN_PREFIX", "a key prefix") ?? data.prefix ?? DEFAULTS.prefix;
  if (!PREFIX_PATTERN.test(prefix)) throw new ConfigError(null, "--prefix", `expected 1-64 of A-Z a-z 0-9 _ . : -, got ${JSON.stringify(prefix)}`);
  const nodeId = overrides.id ?? checked(env.SERVMAN_NODE_ID, NAME_PATTERN, "$SERVMAN_NODE_ID", "a node id") ?? data.node?.id;
  if (nodeId !== undefined && !NAME_PATTERN.test(nodeId)) throw new ConfigError(null, "--id", `expected 1-64 of A-Z a-z 0-9 _ . -, got ${JSON.stringify(nodeId)}`);

  const tasks: Record<string, TaskConfig> = {};
  for (const [name, entry] of Object.entries(data.tasks ?? {})) tasks[name] = blamed(layer, () => resolveTask(name, entry, file, baseDir, env));

  const tls = data.gateway?.tls;
  const config: ServmanConfig = {
    file,
    baseDir,
    redis,
    prefix,
    gateway: {
      host: overrides.host ?? (env.SERVMAN_HOST || undefined) ?? data.gateway?.host ?? DEFAULTS.host,
      port: overrides.port ?? envInt(env, "SERVMAN_PORT", 0, 65535) ?? data.gateway?.port ?? DEFAULTS.port,
      ...(tls ? { tls: { cert: resolve(baseDir, tls.cert), key: resolve(baseDir, tls.key) } } : {}),
      limits: { ...DEFAULTS.limits, ...(data.gateway?.limits ?? {}) },
      insecure: overrides.insecure ?? false,
      resumeWindowMs: data.gateway?.resumeWindowMs ?? DEFAULTS.resumeWindowMs,
      allowedHosts: [...(data.gateway?.allowedHosts ?? [])],
      allowedOrigins: [...(data.gateway?.allowedOrigins ?? [])],
      fanout: data.gateway?.fanout ?? "gateway",
    },
    node: {
      ...(nodeId !== undefined ? { id: nodeId } : {}),
      capacity: overrides.capacity ?? envInt(env, "SERVMAN_CAPACITY", 0, 1_000_000) ?? data.node?.capacity ?? DEFAULTS.capacity,
      launchConcurrency: data.node?.launchConcurrency ?? DEFAULTS.launchConcurrency,
      shutdownDeadlineMs: data.node?.shutdownDeadlineMs ?? DEFAULTS.shutdownDeadlineMs,
      lockDurationMs: data.node?.lockDurationMs ?? DEFAULTS.lockDurationMs,
    },
    auth: authFrom(env, data.auth),
    tasks,
  };
  return deepFreeze(config);
}
