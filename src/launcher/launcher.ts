/**
 * The Launcher (docs/architecture.md#main-classes, docs/launch-queue.md#direct-enqueue-vs-launcher): how another backend (a matchmaker, a lobby service) launches and stops
 * instances through Redis, without a gateway.
 *
 * ```ts
 * const launcher = new Launcher({ redis: "redis://127.0.0.1:6379" });
 * const { instance, node } = await launcher.launch("match", { args: { map: "dust" } });
 * await launcher.stop(instance);
 * await launcher.close();
 * ```
 */
import type { RedisClient } from "../redis-connection.js";
import { nanoid } from "nanoid";
import { pino, type Logger } from "pino";
import { DEFAULTS } from "../config/options.js";
import type { Keys } from "../keys.js";
import type { LaunchJobResult } from "../launch/launch-job.js";
import type { Requester } from "../launch/requester.js";
import { PREFIX_PATTERN, assertName } from "../names.js";
import { ServmanError, toServmanError } from "../errors.js";
import type { NodeCommand } from "../protocol/bus-messages.js";
import { decodeToRequester } from "../protocol/bus-parse.js";
import type { LaunchOptions } from "../protocol/client-messages.js";
import { mintTicket, type TicketGrant } from "../auth/tickets.js";
import { connectCluster } from "../cluster-connection.js";
import { toRedisTarget, type RedisTarget } from "../config/redis-target.js";
import { InstanceLogs, type LogLine, type PostMortem } from "../registry/instance-logs.js";
import type { InstanceRecord } from "../registry/instance-registry.js";
import type { NodeRecord } from "../registry/node-registry.js";
import { onMessage, publish, subscribe } from "../pubsub.js";

export interface LauncherOptions {
  /**
   * Where Redis is: a URL (`redis://`, `redis+sentinel://H:P,H:P/NAME`, `redis+cluster://…`) or a
   * target as the configuration resolves it. Default `redis://127.0.0.1:6379`.
   */
  redis?: string | RedisTarget;
  /** Key prefix of the deployment. Default `servman`. */
  prefix?: string;
  /** The deployment's auth.secret, needed only to mint tickets with {@link Launcher.ticket}. */
  secret?: string;
  logger?: Logger;
}

export interface LauncherLaunchParams {
  args?: Record<string, unknown>;
  /** Instance id; generated when absent. A taken id fails with `already_exists`. */
  instance?: string;
  options?: LaunchOptions;
  /** How long to wait for a node with free capacity. Default 30 000 ms. */
  timeoutMs?: number;
}

/** Every rejection as a ServmanError with a code (RedisClient out of reach is `unavailable`). */
function coded<T>(promise: Promise<T>): Promise<T> {
  return promise.catch((err: unknown) => {
    throw toServmanError(err);
  });
}

export class Launcher {
  readonly keys: Keys;
  private readonly redis: RedisClient;
  private readonly sub: RedisClient;
  private readonly requester: Requester;
  private readonly subscribed: Promise<unknown>;
  private closing: Promise<void> | undefined;
  private readonly secret: string | undefined;
  private readonly logs: InstanceLogs;

  constructor(options: LauncherOptions = {}) {
    this.secret = options.secret;
    const prefix = options.prefix ?? DEFAULTS.prefix;
    if (!PREFIX_PATTERN.test(prefix)) throw new ServmanError("bad_request", `invalid prefix ${JSON.stringify(prefix)}`);
    const url = toRedisTarget(options.redis, DEFAULTS.redis);
    const logger = (options.logger ?? pino({ level: "silent" })).child({ launcher: true });
    const id = `launcher-${nanoid(10)}`;
    let replyChannel: string;
    ({
      keys: this.keys,
      redis: this.redis,
      sub: this.sub,
      replyChannel,
      requester: this.requester,
    } = connectCluster({
      redis: url,
      prefix,
      names: { command: id, subscriber: `${id}-sub` },
      requesterId: id,
      logger,
    }));
    this.logs = new InstanceLogs(this.redis, this.keys);
    onMessage(this.sub, (_channel: string, payload: string) => {
      const decoded = decodeToRequester(payload);
      if (decoded.ok) this.requester.handleReply(decoded.message);
      else logger.warn({ problem: decoded.problem }, "bad reply dropped");
    });
    this.subscribed = subscribe(this.sub, replyChannel);
    // Every call awaits `subscribed` and reports its failure; this only keeps a failure before
    // the first call from being an unhandled rejection.
    this.subscribed.catch(() => {});
  }

  /** Launches an instance; resolves once its service is ready. Rejects with a ServmanError. */
  async launch(task: string, params: LauncherLaunchParams = {}): Promise<LaunchJobResult> {
    await this.subscribed;
    return coded(
      this.requester.launch({
        task,
        ...(params.args !== undefined ? { args: params.args } : {}),
        ...(params.instance !== undefined ? { instance: params.instance } : {}),
        options: params.options ?? {},
        ...(params.timeoutMs !== undefined ? { timeoutMs: params.timeoutMs } : {}),
      }),
    );
  }

  /** Stops an instance (as an admin) and resolves once its process has exited. */
  async stop(instance: string): Promise<void> {
    await this.subscribed;
    return coded(this.requester.stop(instance, null));
  }

  /**
   * Mints a ticket for a client (docs/protocol.md#tickets): give it to the client, which connects with
   * `?ticket=...`. Needs the `secret` option.
   */
  async ticket(grant: TicketGrant): Promise<{ ticket: string; exp: number }> {
    if (this.secret === undefined) throw new ServmanError("bad_request", "Launcher needs the secret option to mint tickets");
    return mintTicket(this.secret, grant);
  }

  /** One instance's registry record, or null. */
  get(instance: string): Promise<InstanceRecord | null> {
    return coded(this.requester.instances.get(assertName(instance, "instance")));
  }

  /** Every instance in the registry. */
  list(): Promise<InstanceRecord[]> {
    return coded(this.requester.instances.list());
  }

  /**
   * Drains a node: it stops taking launches, shuts its instances down within `deadlineMs`
   * (default: its own node.shutdownDeadlineMs), unregisters and exits. Resolves once it is gone.
   */
  async drainNode(node: string, deadlineMs?: number): Promise<void> {
    assertName(node, "node");
    const command: NodeCommand = deadlineMs === undefined ? { type: "drain" } : { type: "drain", deadlineMs };
    if ((await publish(this.redis, this.keys.nodeControl(node), JSON.stringify(command))) === 0) {
      throw new ServmanError("unavailable", `no live node ${JSON.stringify(node)} is listening`);
    }
    // Without a deadline the node uses its own; it keeps its record alive while it drains, and a
    // node that dies meanwhile disappears with its record's TTL, so this loop ends either way.
    const giveUpAt = deadlineMs === undefined ? Infinity : Date.now() + deadlineMs + 15_000;
    while ((await this.requester.nodes.list()).some((n) => n.id === node)) {
      if (Date.now() > giveUpAt) throw new ServmanError("timeout", `node ${node} did not finish draining in time`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * A live instance's record (`live: true`), or how an ended one ended (`live: false`, kept for
   * an hour: exit code, signal, last log lines, peak memory), or null.
   */
  async inspect(instance: string): Promise<({ live: true } & InstanceRecord) | ({ live: false } & PostMortem) | null> {
    const record = await this.get(instance);
    if (record) return { live: true, ...record };
    const pm = await coded(this.logs.postMortem(instance));
    return pm ? { live: false, ...pm } : null;
  }

  /** The last `count` log lines of an instance (live, or ended within the hour). */
  logLines(instance: string, count = 100): Promise<LogLine[]> {
    return coded(this.logs.read(assertName(instance, "instance"), count));
  }

  /** Every live node. */
  nodes(): Promise<NodeRecord[]> {
    return coded(this.requester.nodes.list());
  }

  /** Closes the connections; pending calls reject with `unavailable`. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.requester.close();
      await Promise.allSettled([this.sub.quit(), this.redis.quit()]);
    })();
    return this.closing;
  }
}
