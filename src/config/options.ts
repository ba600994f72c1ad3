/**
 * The resolved, frozen configuration every role receives, and every default in one place.
 * docs/configuration.md documents each field; keep the two in step.
 */
import type { RedisTarget } from "./redis-target.js";

/** How an instance process is started. */
export type TaskKind = "module" | "command";

/**
 * How instances of a task share processes: `"process"`, one process per instance; `"shared"`, a
 * host process runs up to `instancesPerProcess` instances of a `module` task, one service object
 * each (docs/task-protocol.md#shared-isolation).
 */
export type Isolation = "process" | "shared";

/** One task after resolution: paths are absolute, defaults applied. */
export interface TaskConfig {
  readonly name: string;
  readonly kind: TaskKind;
  /** `module` tasks: absolute path of the JavaScript module forked with Node IPC. */
  readonly module?: string;
  /** `command` tasks: argv, first entry resolved on PATH or against the config folder. */
  readonly command?: readonly string[];
  readonly restart: "never" | "on-failure" | "always";
  readonly maxRestarts: number;
  /** How many nodes may try a launch before it fails. Default 1. */
  readonly attempts: number;
  /** A launched process must say `ready` within this, else it is killed (`timeout`). Default 15 000. */
  readonly readyTimeoutMs: number;
  /** Stop the instance after this long with no client joined. Default: never. */
  readonly idleTimeoutMs?: number;
  /**
   * Stop the instance after this long with no member (its {@link emptyTimeoutFor}); 0: never.
   * Absent: the default, which depends on who launched the instance.
   */
  readonly emptyTimeoutMs?: number;
  /** Stop the instance after this long, whatever it is doing. Default: never. */
  readonly maxLifetimeMs?: number;
  readonly maxMemoryMb?: number;
  /**
   * A ready process that sends nothing for this long is hung: it is killed (and restarted if its
   * policy says so). The service SDK sends a heartbeat every 2 s; a command task is watched only
   * once it has sent one. 0: never. Default 15 000.
   */
  readonly livenessTimeoutMs: number;
  readonly relaunch: boolean;
  readonly warm: number;
  /**
   * Processes a warm pool may hold when launches come fast: its target grows from `warm` toward
   * this with the launches it served in the last 10 s, and shrinks back when they slow down.
   * At least `warm`. Default: `warm` (no growth).
   */
  readonly warmMax: number;
  /**
   * Bytes of messages waiting to be written to the process (its stdin, or its IPC channel) at
   * most; past it, client messages to it are dropped and their senders get `dropped`. Also bounds
   * the messages held for it across a restart. Default 8 MiB.
   */
  readonly maxQueuedBytes: number;
  /** Extra environment variables for the process. */
  readonly env: Readonly<Record<string, string>>;
  /** One process per instance, or several instances per host process. Default `"process"`. */
  readonly isolation: Isolation;
  /** Instances one host process of a `shared` task runs at most. Default 100. */
  readonly instancesPerProcess: number;
}

/** Gateway limits (`gateway.limits`, docs/configuration.md#gateway). */
export interface GatewayLimits {
  /** Largest accepted frame; a larger one closes the connection with 1009. Default 1 MiB. */
  readonly maxFrameBytes: number;
  /** Sustained requests per second per connection (token bucket refill). Default 1000. */
  readonly messagesPerSecond: number;
  /** Token bucket size. Default 2000. */
  readonly burst: number;
  /** Instances one connection may be joined to at once. Default 100. */
  readonly maxJoinsPerConnection: number;
  /** Open connections per client IP. Default 1000. */
  readonly maxConnectionsPerIp: number;
  /** A client whose unsent output passes this is disconnected (slow consumer). Default 8 MiB. */
  readonly maxBufferedBytes: number;
  /** Instances one user (ticket `sub`, not admins) may own at once; 0: no limit. Default 100. */
  readonly maxInstancesPerUser: number;
  /** Deepest JSON nesting of a client frame or admin API body (the frame itself is level 1). Default 32. */
  readonly maxDepth: number;
  /** A socket that has not sent a whole HTTP request head within this is closed. Default 10 000. */
  readonly headersTimeoutMs: number;
  /** Ping a connection this often; 0: never. Default 30 000. */
  readonly pingIntervalMs: number;
  /** A connection that has not answered a ping within this is closed. Default 10 000. */
  readonly pongTimeoutMs: number;
}

export interface GatewayConfig {
  readonly host: string;
  readonly port: number;
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly limits: GatewayLimits;
  /** Allow binding a non-loopback address without an auth secret. Default false. */
  readonly insecure: boolean;
  /**
   * How long the session of a dropped connection stays joined, with its events kept, waiting to
   * be resumed on any gateway; 0 ends sessions with their connection. Default 30 000.
   */
  readonly resumeWindowMs: number;
  /**
   * Host names (the `Host` header, without port) the gateway answers besides its bound address
   * and loopback names; `"*"` answers any. Default: none. Keeps DNS-rebinding pages out.
   */
  readonly allowedHosts: readonly string[];
  /**
   * Origins (`scheme://host[:port]`) whose browser pages may open WebSocket connections; `"*"`:
   * any. Without an entry, only pages of the gateway's own allowed hosts, and clients that send
   * no `Origin` (non-browsers). Default: none.
   */
  readonly allowedOrigins: readonly string[];
  /**
   * How nodes reach this gateway's sessions: `"gateway"`, one publish per gateway for a service's
   * event to many members (docs/architecture.md#fan-out-by-gateway); `"session"`, one publish per
   * member, as before fan-out (for comparison, or a rolling upgrade). Default `"gateway"`.
   */
  readonly fanout: "gateway" | "session";
}

export interface NodeConfig {
  /** Stable node id; default `<hostname>-<random>`. */
  readonly id?: string;
  /** Live instances this node holds at most. Default 100. */
  readonly capacity: number;
  /** Launches this node runs at once (forks are CPU-bound). Default 8. */
  readonly launchConcurrency: number;
  /** Time instances get to exit after `shutdown` before they are killed. Default 5 000. */
  readonly shutdownDeadlineMs: number;
  /**
   * BullMQ lock of a launch job while its node works on it (renewed every half of it), and how
   * often a node looks for jobs whose lock ran out (their node died mid-launch). Default 30 000.
   */
  readonly lockDurationMs: number;
}

export interface AuthConfig {
  readonly secret?: string;
  readonly adminTokens: readonly string[];
}

/** The whole resolved configuration. */
export interface ServmanConfig {
  /** Absolute path of the file it came from, or null for defaults only. */
  readonly file: string | null;
  /** Folder paths resolve against and instances run in. */
  readonly baseDir: string;
  /** One server, a cluster or a Sentinel master (docs/configuration.md#redis). */
  readonly redis: RedisTarget;
  readonly prefix: string;
  readonly gateway: GatewayConfig;
  readonly node: NodeConfig;
  readonly auth: AuthConfig;
  readonly tasks: Readonly<Record<string, TaskConfig>>;
}

export const DEFAULTS = Object.freeze({
  redis: "redis://127.0.0.1:6379",
  prefix: "servman",
  host: "127.0.0.1",
  port: 8080,
  capacity: 100,
  launchConcurrency: 8,
  shutdownDeadlineMs: 5_000,
  /** BullMQ's own default lock duration. */
  lockDurationMs: 30_000,
  /** Default launch timeout (a launch's `options.timeoutMs`, docs/protocol.md#launch-options). */
  launchTimeoutMs: 30_000,
  resumeWindowMs: 30_000,
  readyTimeoutMs: 15_000,
  livenessTimeoutMs: 15_000,
  attempts: 1,
  maxRestarts: 5,
  maxQueuedBytes: 8 * 1024 * 1024,
  instancesPerProcess: 100,
  /**
   * `emptyTimeoutMs` of an instance a client launched (it has an owner session) when its task sets
   * none: a client that crashes or forgets to stop its room must not leak a process for ever, and
   * five minutes is long enough for a launcher to share the id and its players to arrive (or to
   * resume a dropped connection). Backends launch ahead of their players: theirs default to 0.
   */
  ownedEmptyTimeoutMs: 300_000,
  limits: Object.freeze({
    maxFrameBytes: 1024 * 1024,
    messagesPerSecond: 1000,
    burst: 2000,
    maxJoinsPerConnection: 100,
    maxConnectionsPerIp: 1000,
    maxBufferedBytes: 8 * 1024 * 1024,
    maxInstancesPerUser: 100,
    maxDepth: 32,
    headersTimeoutMs: 10_000,
    pingIntervalMs: 30_000,
    pongTimeoutMs: 10_000,
  }) satisfies GatewayLimits,
});

/**
 * How long an instance of `task` may have no member before it stops; 0: never. A task's own
 * `emptyTimeoutMs` applies to every instance; without one, instances a client launched (`owned`:
 * they have an owner session) get {@link DEFAULTS}.ownedEmptyTimeoutMs and those a backend
 * launched (Launcher, admin API, CLI, a direct enqueue) never stop for being empty.
 */
export function emptyTimeoutFor(task: Pick<TaskConfig, "emptyTimeoutMs">, owned: boolean): number {
  return task.emptyTimeoutMs ?? (owned ? DEFAULTS.ownedEmptyTimeoutMs : 0);
}
