/**
 * The registry's Lua scripts, one file each in `src/registry/lua/` (each opens with its KEYS and
 * ARGV and what it returns). They are read once, when this module loads, and defined on each
 * connection that runs one (ioredis `defineCommand`): a connection sends a script's text once,
 * then only its SHA1 (EVALSHA), and sends the text again if Redis has lost it (a restart).
 */
import { readFileSync } from "node:fs";
import type { RedisClient } from "../redis-connection.js";

/** Each script's file in `src/registry/lua/` and how many of its arguments are keys. */
const SCRIPTS = {
  sessionClaim: { file: "session-claim.lua", keys: 4 },
  sessionDetach: { file: "session-detach.lua", keys: 3 },
  sessionEnd: { file: "session-end.lua", keys: 2 },
  sessionResumed: { file: "session-resumed.lua", keys: 1 },
  sessionTakeExpired: { file: "session-take-expired.lua", keys: 2 },
  sessionOrphan: { file: "session-orphan.lua", keys: 2 },
  instanceReserve: { file: "instance-reserve.lua", keys: 3 },
  instanceClaim: { file: "instance-claim.lua", keys: 5 },
  instanceCancelUnclaimed: { file: "instance-cancel-unclaimed.lua", keys: 3 },
  instanceRelease: { file: "instance-release.lua", keys: 2 },
  instanceTakeOver: { file: "instance-take-over.lua", keys: 4 },
  instanceUpdateOwn: { file: "instance-update-own.lua", keys: 1 },
  instanceRemoveIfNode: { file: "instance-remove-if-node.lua", keys: 5 },
  instanceRestore: { file: "instance-restore.lua", keys: 4 },
  nodeHeartbeat: { file: "node-heartbeat.lua", keys: 2 },
  nodeClaimReap: { file: "node-claim-reap.lua", keys: 2 },
} as const;

/** A script's name, as its callers give it. */
export type ScriptName = keyof typeof SCRIPTS;

// tsc copies no .lua file into dist/, so the scripts stay in src/ and are read from there: this
// module runs as dist/src/registry/lua-scripts.js, three levels below the package root, and
// package.json "files" ships src/registry/lua (docs/contributing.md#lua-scripts).
const LUA_DIR = new URL("../../../src/registry/lua/", import.meta.url);

const SOURCES = new Map<ScriptName, string>((Object.keys(SCRIPTS) as ScriptName[]).map((name) => [name, readFileSync(new URL(SCRIPTS[name].file, LUA_DIR), "utf8")]));

/** The method `defineCommand` adds; prefixed so it never shadows an ioredis command. */
const method = (name: ScriptName): string => `servman_${name}`;

const defined = new WeakSet<RedisClient>();

type ScriptMethods = Record<string, (...args: (string | number)[]) => Promise<unknown>>;

/** Runs script `name` on `redis` with `keys` and `args`; resolves to what the script returns. */
export async function runScript(redis: RedisClient, name: ScriptName, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
  if (!defined.has(redis)) {
    for (const [script, lua] of SOURCES) redis.defineCommand(method(script), { lua, numberOfKeys: SCRIPTS[script].keys });
    defined.add(redis);
  }
  if (keys.length !== SCRIPTS[name].keys) throw new Error(`Lua script ${name} takes ${SCRIPTS[name].keys} keys, not ${keys.length}`);
  return (redis as unknown as ScriptMethods)[method(name)](...keys, ...args);
}
