/**
 * Where Redis is: one server, a Redis Cluster, or a master found through Sentinel
 * (docs/configuration.md#redis). The configuration file gives a URL or an object; `--redis` and
 * `SERVMAN_REDIS_URL` give the same three forms as one string:
 *
 * - `redis://…` / `rediss://…`: one server;
 * - `redis+cluster://[USER:PASS@]H1:P1,H2:P2`: a cluster, from these startup nodes
 *   (`rediss+cluster://` for TLS);
 * - `redis+sentinel://[USER:PASS@]H1:P1,H2:P2/MASTER`: the master `MASTER` of these sentinels
 *   (`rediss+sentinel://` for TLS to the master).
 */
import { ConfigError } from "../errors.js";

/** One server, by URL (credentials and TLS in the URL). */
export interface SingleRedis {
  readonly kind: "single";
  readonly url: string;
}

/** A Redis Cluster (7.0 or newer), by its startup nodes' URLs. */
export interface ClusterRedis {
  readonly kind: "cluster";
  readonly nodes: readonly string[];
}

/** A master found through Redis Sentinel. */
export interface SentinelRedis {
  readonly kind: "sentinel";
  readonly sentinels: readonly { readonly host: string; readonly port: number }[];
  /** The master's name in the sentinels' configuration. */
  readonly name: string;
  readonly username?: string;
  readonly password?: string;
  /** Password of the sentinels themselves, when they have one. */
  readonly sentinelPassword?: string;
  /** TLS to the master and its replicas. */
  readonly tls: boolean;
}

export type RedisTarget = SingleRedis | ClusterRedis | SentinelRedis;

/** The object forms of `redis` in the configuration file (the schema checks their fields). */
export type RedisFileValue = string | { cluster: string[] } | { sentinels: string[]; name: string; username?: string; password?: string; sentinelPassword?: string; tls?: boolean };

const SINGLE = /^rediss?:\/\/\S+$/;
const MULTI = /^(rediss?)\+(cluster|sentinel):\/\/(.*)$/;

function hostPort(text: string, where: string, file: string | null): { host: string; port: number } {
  // An IPv6 address is written in brackets: [::1]:26379.
  const m = /^(\[[0-9a-fA-F:.]+\]|[^:[\]/\s]+):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new ConfigError(file, where, `expected HOST:PORT, got ${JSON.stringify(text)}`);
  return { host: m[1].replace(/^\[|\]$/g, ""), port };
}

function decode(text: string, where: string, file: string | null): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new ConfigError(file, where, "credentials are not valid %-encoding");
  }
}

/**
 * Parses the one-string form given by `--redis`, `SERVMAN_REDIS_URL` or the file's `redis`.
 * @param where the flag, variable or key named in a ConfigError
 */
export function parseRedisString(text: string, where: string, file: string | null = null): RedisTarget {
  const multi = MULTI.exec(text);
  if (!multi) {
    if (!SINGLE.test(text)) {
      throw new ConfigError(file, where, `expected redis://, rediss://, redis+cluster:// or redis+sentinel://, got ${JSON.stringify(redactUrl(text))}`);
    }
    return { kind: "single", url: text };
  }
  const [, scheme, kind, rest] = multi as unknown as [string, string, "cluster" | "sentinel", string];
  // Credentials end at the last "@" (a password may contain one); the hosts follow.
  const at = rest.lastIndexOf("@");
  const userinfo = at === -1 ? "" : rest.slice(0, at);
  const afterAt = at === -1 ? rest : rest.slice(at + 1);
  const slash = afterAt.indexOf("/");
  const hostList = slash === -1 ? afterAt : afterAt.slice(0, slash);
  const path = slash === -1 ? "" : afterAt.slice(slash + 1);
  if (hostList === "") throw new ConfigError(file, where, `${scheme}+${kind}:// needs at least one HOST:PORT`);
  const hosts = hostList.split(",").map((h) => hostPort(h, where, file));
  const colon = userinfo.indexOf(":");
  const username = userinfo === "" ? "" : decode(colon === -1 ? "" : userinfo.slice(0, colon), where, file);
  const password = userinfo === "" ? "" : decode(colon === -1 ? userinfo : userinfo.slice(colon + 1), where, file);
  if (kind === "cluster") {
    if (path !== "") throw new ConfigError(file, where, "redis+cluster:// takes no path (a cluster has only database 0)");
    const auth = userinfo === "" ? "" : `${encodeURIComponent(username)}:${encodeURIComponent(password)}@`;
    return { kind: "cluster", nodes: hosts.map(({ host, port }) => `${scheme}://${auth}${host.includes(":") ? `[${host}]` : host}:${port}`) };
  }
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(path)) {
    throw new ConfigError(file, where, `redis+sentinel:// needs the master's name as its path (redis+sentinel://H1:P1,H2:P2/mymaster), got ${JSON.stringify(path)}`);
  }
  return {
    kind: "sentinel",
    sentinels: hosts,
    name: path,
    ...(username !== "" ? { username } : {}),
    ...(password !== "" ? { password } : {}),
    tls: scheme === "rediss",
  };
}

/**
 * A target from what a program passes (the Launcher's `redis` option): any of the three string
 * forms, a target, or nothing for the default single server.
 */
export function toRedisTarget(value: string | RedisTarget | undefined, fallback: string): RedisTarget {
  if (value === undefined) return parseRedisString(fallback, "redis");
  return typeof value === "string" ? parseRedisString(value, "redis") : value;
}

/** Resolves the file's `redis` value (already checked against the schema). */
export function redisTargetOf(value: RedisFileValue, file: string | null): RedisTarget {
  if (typeof value === "string") return parseRedisString(value, "redis", file);
  if ("cluster" in value) {
    value.cluster.forEach((url, i) => {
      if (!SINGLE.test(url)) throw new ConfigError(file, `redis.cluster.${i}`, `expected a redis:// or rediss:// URL of a cluster node, got ${JSON.stringify(url)}`);
    });
    return { kind: "cluster", nodes: [...value.cluster] };
  }
  return {
    kind: "sentinel",
    sentinels: value.sentinels.map((s, i) => hostPort(s, `redis.sentinels.${i}`, file)),
    name: value.name,
    ...(value.username !== undefined ? { username: value.username } : {}),
    ...(value.password !== undefined ? { password: value.password } : {}),
    ...(value.sentinelPassword !== undefined ? { sentinelPassword: value.sentinelPassword } : {}),
    tls: value.tls ?? false,
  };
}

/** The URL with its password replaced by `***`, for messages and logs. */
export function redactUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0];
  if (scheme === undefined) return url;
  // The password may itself contain "@": the host starts after the last one.
  const at = url.lastIndexOf("@");
  if (at < scheme.length) return url;
  const userinfo = url.slice(scheme.length, at);
  const colon = userinfo.indexOf(":");
  // Without a colon the one word may be a password (some clients read it so): hide it all.
  return `${scheme}${colon === -1 ? "" : userinfo.slice(0, colon)}:***${url.slice(at)}`;
}

/** A description for logs and messages, with every password hidden. */
export function describeRedis(target: RedisTarget): string {
  switch (target.kind) {
    case "single":
      return redactUrl(target.url);
    case "cluster":
      return `cluster ${target.nodes.map(redactUrl).join(",")}`;
    case "sentinel":
      return `sentinel master "${target.name}" via ${target.sentinels.map((s) => `${s.host}:${s.port}`).join(",")}`;
  }
}
