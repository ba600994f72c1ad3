/**
 * Launches and stops instances on behalf of a gateway or a Launcher: reserves the id, enqueues the
 * BullMQ job, and waits for the node's answer on this requester's reply channel. The registry is
 * the source of truth; pub/sub is only the fast path, so a lost reply is recovered by reading it.
 */
import { Queue } from "bullmq";
import type { RedisClient } from "../redis-connection.js";
import { customAlphabet, nanoid } from "nanoid";
import type { Logger } from "pino";
import { DEFAULTS } from "../config/options.js";
import { ServmanError } from "../errors.js";
import type { Keys } from "../keys.js";
import { assertName } from "../names.js";
import type { ToInstance, ToRequester } from "../protocol/bus-messages.js";
import type { LaunchOptions } from "../protocol/client-messages.js";
import { InstanceRegistry } from "../registry/instance-registry.js";
import { NodeRegistry } from "../registry/node-registry.js";
import { abandonedRetryError } from "./attempt-error.js";
import { LAUNCH_JOB_NAME, type LaunchJobData, type LaunchJobResult, type LaunchJoin } from "./launch-job.js";
import { publish } from "../pubsub.js";

/** What a requester launches, and for whom (the client frame is `LaunchRequest`, client-messages.ts). */
export interface LaunchSpec {
  task: string;
  args?: Record<string, unknown>;
  /** Instance id; generated when absent. */
  instance?: string;
  options?: LaunchOptions;
  /** Session id of the launching client (its owner), if any. */
  owner?: string | null;
  ownerUser?: string | null;
  /** How long to wait for a node with free capacity. Default 30 000 ms (or `options.timeoutMs`). */
  timeoutMs?: number;
  /** Most instances `ownerUser` may own at once (`rate_limited` past it); 0 or absent: no limit. */
  quota?: number;
  /** A client the node joins as part of the launch (docs/protocol.md#launch-and-join). */
  join?: LaunchJoin;
}

/**
 * A launch's outcome. `joined` (and `reason` when false): the service's answer to the launch's
 * `join`; absent when none was asked, or when the answer was not heard (the registry told the
 * launch succeeded: the caller must join the usual way).
 */
export interface LaunchResult extends LaunchJobResult {
  joined?: boolean;
  reason?: string;
}

interface PendingLaunch {
  token: string;
  resolve(result: LaunchResult): void;
  reject(err: ServmanError): void;
  timer: NodeJS.Timeout | undefined;
}

interface PendingStop {
  resolve(): void;
  reject(err: ServmanError): void;
  timer: NodeJS.Timeout;
}

/** Generated instance ids: alphanumeric, so they are valid names in every position. */
/** A random instance id, for launches that do not name one. */
export const newInstanceId = customAlphabet("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", 16);

/** After the launch deadline, how often the registry is read while a claimed launch finishes. */
const CLAIMED_POLL_MS = 500;
/** A claimed launch that is neither ready nor failed this long after its deadline is a `timeout`. */
const CLAIMED_GRACE_MS = 60_000;
/** How long a stop waits for the node to acknowledge it (`stopping`, with the deadline). */
const STOP_ACK_TIMEOUT_MS = 30_000;
/** How long a stop waits beyond the deadline the node announced. */
const STOP_GRACE_MS = 10_000;
/** A reservation that failed on our side is cancelled at once, and again this much later. */
const WITHDRAW_AGAIN_MS = 10_000;

export interface RequesterOptions {
  /** Command connection (shared; not closed by the requester). */
  redis: RedisClient;
  keys: Keys;
  /** Channel this requester's owner subscribes to and feeds into {@link Requester.handleReply}. */
  replyChannel: string;
  logger: Logger;
}

export class Requester {
  private readonly redis: RedisClient;
  private readonly keys: Keys;
  private readonly replyChannel: string;
  private readonly logger: Logger;
  readonly instances: InstanceRegistry;
  readonly nodes: NodeRegistry;
  private readonly queues = new Map<string, Queue>();
  private readonly launches = new Map<string, PendingLaunch>();
  /** Timers of reservations to cancel again (see withdraw). */
  private readonly withdrawals = new Set<NodeJS.Timeout>();
  private readonly stops = new Map<string, PendingStop[]>();
  private closed = false;

  constructor(options: RequesterOptions) {
    this.redis = options.redis;
    this.keys = options.keys;
    this.replyChannel = options.replyChannel;
    this.logger = options.logger;
    this.instances = new InstanceRegistry(this.redis, this.keys);
    this.nodes = new NodeRegistry(this.redis, this.keys);
  }

  /** The BullMQ queue of `task` (created once, sharing the command connection). */
  queue(task: string): Queue {
    let queue = this.queues.get(task);
    if (!queue) {
      queue = new Queue(this.keys.queueName(task), { connection: this.redis, prefix: this.keys.queuePrefix() });
      queue.on("error", (err) => this.logger.warn({ err, task }, "launch queue error"));
      this.queues.set(task, queue);
    }
    return queue;
  }

  /** Launches an instance and resolves once its service said `ready`. Rejects with a ServmanError. */
  async launch(req: LaunchSpec): Promise<LaunchResult> {
    if (this.closed) throw new ServmanError("unavailable", "launcher is closed");
    const task = assertName(req.task, "task");
    const instance = req.instance === undefined ? newInstanceId() : assertName(req.instance, "instance");
    const options = req.options ?? {};
    const timeoutMs = req.timeoutMs ?? options.timeoutMs ?? DEFAULTS.launchTimeoutMs;
    if ((await this.nodes.offering(task)) === 0) {
      throw new ServmanError("unknown_task", `no live node offers task ${JSON.stringify(task)}`);
    }
    const token = nanoid(16);
    const owner = req.owner ?? null;
    const ownerUser = req.ownerUser ?? null;
    let reserved: Awaited<ReturnType<InstanceRegistry["reserve"]>>;
    try {
      reserved = await this.instances.reserve(instance, { task, owner, ownerUser, options, token, args: req.args ?? {} }, req.quota ?? 0);
    } catch (err) {
      this.withdraw(instance, token, ownerUser);
      throw err;
    }
    if (reserved === "taken") throw new ServmanError("already_exists", `instance ${JSON.stringify(instance)} already exists`);
    if (reserved === "quota") throw new ServmanError("rate_limited", `launch quota reached: ${ownerUser} already owns ${req.quota} instances`);
    const deadline = Date.now() + timeoutMs;
    const result = new Promise<LaunchResult>((resolve, reject) => {
      this.launches.set(instance, { token, resolve, reject, timer: undefined });
    });
    const data: LaunchJobData = {
      instance,
      task,
      args: req.args ?? {},
      options,
      owner,
      ownerUser,
      token,
      reply: this.replyChannel,
      deadline,
      ...(req.join ? { join: req.join } : {}),
    };
    try {
      await this.queue(task).add(LAUNCH_JOB_NAME, data, {
        removeOnComplete: { age: 3600, count: 1000 },
        removeOnFail: { age: 24 * 3600, count: 1000 },
      });
    } catch (err) {
      this.launches.delete(instance);
      await this.instances
        .cancelUnclaimed(instance, token, ownerUser)
        .catch((cancelErr: unknown) => this.logger.warn({ err: cancelErr, instance }, "could not withdraw the reservation of a launch that was not enqueued"));
      throw new ServmanError("unavailable", `could not enqueue the launch: ${(err as Error).message}`, { cause: err });
    }
    const pending = this.launches.get(instance);
    if (pending) pending.timer = setTimeout(() => void this.onDeadline(instance, token, ownerUser, deadline), Math.max(0, deadline - Date.now()));
    return result;
  }

  /**
   * A reservation that timed out on our side may still be carried out once Redis answers again
   * (the command was sent). Nobody would ever claim or cancel it, so it is cancelled now (it runs
   * after the reservation on the same connection) and once more later (in case the connection
   * was replaced in between). Cancelling a reservation that never happened does nothing.
   */
  private withdraw(instance: string, token: string, ownerUser: string | null): void {
    const cancel = () =>
      void this.instances.cancelUnclaimed(instance, token, ownerUser).catch((err: unknown) => this.logger.warn({ err, instance }, "could not withdraw a reservation that timed out"));
    cancel();
    const timer = setTimeout(() => {
      this.withdrawals.delete(timer);
      cancel();
    }, WITHDRAW_AGAIN_MS);
    this.withdrawals.add(timer);
  }

  private settleLaunch(instance: string, token: string, outcome: LaunchResult | ServmanError): void {
    const pending = this.launches.get(instance);
    if (!pending || pending.token !== token) return;
    this.launches.delete(instance);
    clearTimeout(pending.timer);
    if (outcome instanceof ServmanError) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  /**
   * From the deadline on, the registry decides: unclaimed means no node took the launch (or the
   * next attempt after a failed one, once its `retryBy` passed); claimed means an attempt runs,
   * which ends within the task's readyTimeoutMs. Failed attempts push `retryBy`, and so this wait.
   */
  private async onDeadline(instance: string, token: string, ownerUser: string | null, deadline: number): Promise<void> {
    try {
      const cancelled = await this.instances.cancelUnclaimed(instance, token, ownerUser);
      if (cancelled) {
        const err = cancelled.tries > 0 ? abandonedRetryError(cancelled.lastError, cancelled.tries) : new ServmanError("no_capacity", `no node had free capacity for ${instance} in time`);
        this.settleLaunch(instance, token, err);
        return;
      }
      const record = await this.instances.get(instance);
      if (record && record.token === token && record.state !== "launching") {
        this.settleLaunch(instance, token, { instance, node: record.node });
        return;
      }
      if (!record || record.token !== token || Date.now() > Math.max(deadline, record.retryBy) + CLAIMED_GRACE_MS) {
        this.settleLaunch(instance, token, new ServmanError("timeout", `launch of ${instance} did not complete`));
        return;
      }
    } catch (err) {
      this.logger.warn({ err, instance }, "launch deadline check failed; retrying");
    }
    const pending = this.launches.get(instance);
    if (pending && pending.token === token) {
      pending.timer = setTimeout(() => void this.onDeadline(instance, token, ownerUser, deadline), CLAIMED_POLL_MS);
    }
  }

  /**
   * Stops an instance and resolves once its process has exited. `by` is the requesting session
   * (ownership is checked by the caller); null for an admin.
   */
  async stop(instance: string, by: string | null): Promise<void> {
    if (this.closed) throw new ServmanError("unavailable", "launcher is closed");
    assertName(instance, "instance");
    const record = await this.instances.get(instance);
    if (!record) throw new ServmanError("unknown_instance", `no instance ${JSON.stringify(instance)}`);
    if (record.state === "launching") {
      throw new ServmanError("unavailable", `instance ${instance} is still launching; stop it once launched`);
    }
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => void this.onStopTimeout(instance), STOP_ACK_TIMEOUT_MS);
      const waiters = this.stops.get(instance) ?? [];
      waiters.push({ resolve, reject, timer });
      this.stops.set(instance, waiters);
    });
    const message: ToInstance = { type: "stop", by, reply: this.replyChannel };
    const receivers = await publish(this.redis, this.keys.instanceChannel(instance), JSON.stringify(message));
    if (receivers === 0 && (await this.instances.get(instance)) !== null) {
      this.settleStops(instance, new ServmanError("unavailable", `the node of ${instance} is not answering`));
    } else if (receivers === 0) {
      this.settleStops(instance, null);
    }
    return done;
  }

  private async onStopTimeout(instance: string): Promise<void> {
    const gone = (await this.instances.get(instance).catch(() => undefined)) === null;
    this.settleStops(instance, gone ? null : new ServmanError("timeout", `instance ${instance} did not stop in time`));
  }

  private settleStops(instance: string, err: ServmanError | null): void {
    const waiters = this.stops.get(instance);
    if (!waiters) return;
    this.stops.delete(instance);
    for (const w of waiters) {
      clearTimeout(w.timer);
      if (err) w.reject(err);
      else w.resolve();
    }
  }

  /** The instance died with its node: a stop waiting for it is done (it is gone). */
  onLost(instance: string): void {
    this.settleStops(instance, null);
  }

  /** Feeds one message received on the reply channel. */
  handleReply(message: ToRequester): void {
    switch (message.type) {
      case "launched":
        this.settleLaunch(message.instance, message.token, {
          instance: message.instance,
          node: message.node,
          ...(message.joined !== undefined ? { joined: message.joined } : {}),
          ...(message.reason !== undefined ? { reason: message.reason } : {}),
        });
        break;
      case "launch_error":
        this.settleLaunch(message.instance, message.token, new ServmanError(message.code, message.message));
        break;
      case "stopping":
        for (const w of this.stops.get(message.instance) ?? []) {
          clearTimeout(w.timer);
          w.timer = setTimeout(() => void this.onStopTimeout(message.instance), message.deadlineMs + STOP_GRACE_MS);
        }
        break;
      case "stopped":
        this.settleStops(message.instance, null);
        break;
      default:
        break;
    }
  }

  /** Rejects everything pending with `unavailable` and closes the queues. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const timer of this.withdrawals) clearTimeout(timer);
    this.withdrawals.clear();
    const err = new ServmanError("unavailable", "launcher is closing");
    for (const [instance, pending] of this.launches) this.settleLaunch(instance, pending.token, err);
    for (const instance of [...this.stops.keys()]) this.settleStops(instance, err);
    await Promise.allSettled([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
