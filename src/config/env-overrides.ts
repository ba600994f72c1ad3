/**
 * The environment's layer of the configuration (docs/configuration.md#environment-variables):
 * every key of the file can be set as `SERVMAN_` + its path (env-names.ts), or read from a file
 * with `_FILE`. The values go into the file's data before its one validation, so they are checked
 * exactly as the file's are, and a problem with one names the variable rather than the file.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { TSchema } from "@sinclair/typebox";
import { ConfigError } from "../errors.js";
import { AmbiguousEntry, findKey, LEVEL, levelsBelow, suggestName, type KeyTarget, type SchemaNode } from "./env-names.js";
import { ConfigFileSchema } from "./schema.js";

const PREFIX = "SERVMAN_";
const FILE_SUFFIX = "_FILE";

/**
 * v1's variables, which load-config reads itself, each in its own form (a one-string `redis`,
 * comma-separated admin tokens): the key each one sets, or null for those that set none.
 */
export const V1_VARIABLES: Readonly<Record<string, string | null>> = {
  SERVMAN_CONFIG: null,
  SERVMAN_LOG_LEVEL: null,
  SERVMAN_REDIS_URL: "redis",
  SERVMAN_PREFIX: "prefix",
  SERVMAN_HOST: "gateway.host",
  SERVMAN_PORT: "gateway.port",
  SERVMAN_CAPACITY: "node.capacity",
  SERVMAN_NODE_ID: "node.id",
  SERVMAN_AUTH_SECRET: "auth.secret",
  SERVMAN_ADMIN_TOKENS: "auth.adminTokens",
};

/** Set by a node for the processes it starts (docs/task-protocol.md), so seen by a CLI run from a task: not configuration. */
const INSTANCE_VARIABLES = new Set(["SERVMAN_INSTANCE", "SERVMAN_TASK"]);

/** The environment's layer over the file. */
export interface EnvironmentLayer {
  /** The file's data with the environment's values set in it; not validated yet. */
  readonly data: unknown;
  /** One line per `SERVMAN_*` variable that sets nothing (a typo, or another program's variable). */
  readonly warnings: readonly string[];
  /** `err` again, or, when it is a ConfigError about a key a variable set, the same error naming that variable. */
  blame(err: unknown): unknown;
}

/** One variable, applied. */
interface Applied {
  variable: string;
  /** The key's path, dotted. */
  key: string;
  value: unknown;
  /** The dotted path of the record entry (a task) it created, if any. */
  created: string | null;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** What the schema lets a key be: `string`, `number`, `integer`, `boolean`, `array`, `object`, `null`, or `any`. */
function kindsOf(schema: SchemaNode): Set<string> {
  if (schema.anyOf) return new Set(schema.anyOf.flatMap((s) => [...kindsOf(s)]));
  if (schema.type !== undefined) return new Set([schema.type]);
  if (schema.const !== undefined) return new Set([typeof schema.const]);
  return new Set(["any"]);
}

function fits(kinds: Set<string>, value: unknown): boolean {
  if (kinds.has("any")) return true;
  if (value === null) return kinds.has("null");
  if (Array.isArray(value)) return kinds.has("array");
  if (typeof value === "number") return kinds.has("number") || kinds.has("integer");
  return kinds.has(typeof value);
}

const KIND_WORDS: Record<string, string> = {
  number: "a number",
  integer: "an integer",
  boolean: "true or false",
  array: 'a JSON array (["a","b"])',
  object: "a JSON object",
  null: "null",
};

/**
 * The text of a variable as the type the schema gives its key: a string key takes it as it is;
 * numbers, booleans, arrays and objects are read as JSON.
 */
function convert(text: string, schema: SchemaNode, variable: string): unknown {
  const kinds = kindsOf(schema);
  if (kinds.size === 1 && kinds.has("string")) return text;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (parsed !== undefined && fits(kinds, parsed)) return parsed;
  if (kinds.has("string") || kinds.has("any")) return text;
  const expected = [...kinds].map((k) => KIND_WORDS[k] ?? k).join(" or ");
  // A list or object may hold secrets (admin tokens): only a number or boolean is quoted back.
  const scalar = !kinds.has("array") && !kinds.has("object");
  throw new ConfigError(null, `$${variable}`, `expected ${expected}${scalar ? `, got ${JSON.stringify(text.slice(0, 64))}` : ""}`);
}

/** The content of a `_FILE` variable's file, without its trailing newline. */
function readValueFile(variable: string, path: string, cwd: string): string {
  const full = resolve(cwd, path);
  try {
    return readFileSync(full, "utf8").replace(/\r?\n$/, "");
  } catch (err) {
    throw new ConfigError(null, `$${variable}`, `cannot read ${full}: ${(err as Error).message}`, { cause: err });
  }
}

/** Whether `value` has something at `rest` (a dotted path below it, "" for itself). */
function hasAt(value: unknown, rest: string): boolean {
  let at = value;
  for (const key of rest === "" ? [] : rest.split(".")) {
    if (typeof at !== "object" || at === null || !Object.hasOwn(at, key)) return false;
    at = (at as Record<string, unknown>)[key];
  }
  return true;
}

/** The variable that set the key at `key` (dotted), itself or as part of a JSON value; the deepest one wins. */
function setterOf(applied: readonly Applied[], key: string): Applied | undefined {
  let found: Applied | undefined;
  for (const a of applied) {
    const below = key === a.key ? "" : key.startsWith(`${a.key}.`) ? key.slice(a.key.length + 1) : null;
    if (below !== null && hasAt(a.value, below) && (found === undefined || a.key.length >= found.key.length)) found = a;
  }
  return found;
}

/** Sets `value` at `path` in `data`, making the missing levels. */
function setAt(data: Record<string, unknown>, path: string[], value: unknown, variable: string): void {
  let at = data;
  for (const [i, key] of path.slice(0, -1).entries()) {
    if (at[key] === undefined) at[key] = {};
    const next = at[key];
    if (!isPlainObject(next)) throw new ConfigError(null, `$${variable}`, `cannot set ${path.join(".")}: ${path.slice(0, i + 1).join(".")} is not an object here`);
    at = next;
  }
  at[path[path.length - 1]] = value;
}

/** Which key a variable name sets: `_FILE` reads a file unless the whole name is a key that exists already. */
function targetOf(schema: SchemaNode, name: string, data: unknown): { target: KeyTarget; fromFile: boolean } | null {
  const direct = findKey(schema, name.split(LEVEL), data);
  if (direct !== null && direct.createsAt === 0) return { target: direct, fromFile: false };
  const viaFile = name.endsWith(FILE_SUFFIX) ? findKey(schema, name.slice(0, -FILE_SUFFIX.length).split(LEVEL), data) : null;
  if (viaFile !== null) return { target: viaFile, fromFile: true };
  return direct === null ? null : { target: direct, fromFile: false };
}

/** Says which level of a name that starts with a section matches no key, and what it could be. */
function missingLevel(schema: SchemaNode, levels: string[], data: unknown): string {
  let known = 1;
  while (known < levels.length && findKey(schema, levels.slice(0, known + 1), data) !== null) known++;
  const parent = findKey(schema, levels.slice(0, known), data)!;
  const below = levelsBelow(parent.schema);
  const what = below.length === 0 ? "it takes its whole value as one variable" : `its keys are ${below.join(", ")}`;
  return `: ${parent.path.join(".")} has no ${levels[known]} (${what})`;
}

/**
 * Applies the `SERVMAN_*` variables of `env` over `fileData` (the file as parsed, or `{}`).
 * Throws ConfigError naming the variable for a value of the wrong type, an unreadable `_FILE`,
 * two variables for one key (`X` and `X_FILE`, a v1 name and its v2 name), and a name that
 * starts like a config section (`SERVMAN_GATEWAY__…`) but names no key. Other unknown names only
 * warn: the environment is shared with other programs.
 * @param cwd where a relative `_FILE` path is resolved
 */
export function applyEnvironment(fileData: unknown, env: NodeJS.ProcessEnv, cwd: string, schema: TSchema = ConfigFileSchema): EnvironmentLayer {
  const root = schema as SchemaNode;
  const data: unknown = structuredClone(fileData);
  const applied: Applied[] = [];
  const warnings: string[] = [];
  // A file that is not an object is refused by the validation, naming the file.
  if (!isPlainObject(data)) return { data, warnings, blame: (err) => err };
  const names = Object.keys(env)
    .filter((v) => v.startsWith(PREFIX) && env[v] !== "" && env[v] !== undefined && !(v in V1_VARIABLES) && !INSTANCE_VARIABLES.has(v))
    .map((variable) => ({ variable, name: variable.slice(PREFIX.length) }))
    // Outer keys first, so that `SERVMAN_GATEWAY__LIMITS__BURST` applies over a `SERVMAN_GATEWAY__LIMITS` object.
    .sort((a, b) => a.name.split(LEVEL).length - b.name.split(LEVEL).length || (a.variable < b.variable ? -1 : 1));

  for (const { variable, name } of names) {
    let found: ReturnType<typeof targetOf>;
    try {
      found = targetOf(root, name, data);
    } catch (err) {
      if (!(err instanceof AmbiguousEntry)) throw err;
      throw new ConfigError(null, `$${variable}`, `a level of the name ${err.message} (names match case-insensitively, with _ for -): rename one in the file`);
    }
    if (found === null) {
      const suggestion = suggestName(root, name);
      const hint = suggestion === null ? "" : ` (did you mean ${PREFIX}${suggestion}? levels are separated by ${LEVEL})`;
      // `SERVMAN_<section>__…` can only be meant for the configuration: a typo there is an error, as in the file.
      if (name.includes(LEVEL) && findKey(root, [name.split(LEVEL)[0]], data) !== null) {
        throw new ConfigError(null, `$${variable}`, `names no configuration key${hint || missingLevel(root, name.split(LEVEL), data)}`);
      }
      warnings.push(`$${variable} names no configuration key and is ignored${hint}`);
      continue;
    }
    const { target, fromFile } = found;
    const key = target.path.join(".");
    const twice = applied.find((a) => a.key === key);
    if (twice !== undefined) throw new ConfigError(null, `$${variable}`, `$${twice.variable} sets ${key} too: set only one of them`);
    const text = fromFile ? readValueFile(variable, env[variable]!, cwd) : env[variable]!;
    const value = convert(text, target.schema, variable);
    setAt(data, target.path, value, variable);
    applied.push({ variable, key, value, created: target.createsAt > 0 ? target.path.slice(0, target.createsAt).join(".") : null });
  }

  for (const [v1, key] of Object.entries(V1_VARIABLES)) {
    if (key === null || env[v1] === undefined || env[v1] === "") continue;
    const other = setterOf(applied, key);
    if (other !== undefined) throw new ConfigError(null, `$${v1}`, `$${other.variable} sets ${key} too: set only one of them (${v1} is the older name)`);
  }

  return {
    data,
    warnings,
    blame(err: unknown): unknown {
      if (!(err instanceof ConfigError) || err.path.startsWith("$")) return err;
      const by = setterOf(applied, err.path) ?? applied.find((a) => a.created !== null && (err.path === a.created || err.path.startsWith(`${a.created}.`)));
      if (by !== undefined) return new ConfigError(null, `$${by.variable} (${err.path})`, err.reason, { cause: err });
      // A problem with a whole object (a task with both module and command) may come from file and environment together.
      const inside = applied.filter((a) => err.path === "" || a.key.startsWith(`${err.path}.`)).map((a) => `$${a.variable}`);
      if (inside.length === 0) return err;
      return new ConfigError(err.file, err.path, `${err.reason} (with ${inside.join(", ")} from the environment)`, { cause: err });
    },
  };
}
