/**
 * A worker node: claims launch jobs for its tasks from BullMQ, runs each instance as a child
 * process, relays between Redis and the processes, and keeps its liveness record fresh.
 */
import { hostname } from "node:os";
import { UnrecoverableError, type Job } from "bullmq";
import type { RedisClient } from "../src/redis-connection.js";
import { pino, type Logger } from "pino";
import type { ServmanConfig, TaskConfig } from "../src/config/options.js";
import { ServmanError, toServmanError, type ErrorCode } from "../src/errors.js";
import type { Keys } from "../src/keys.js";
import { launchSpec, type LaunchJobData, type LaunchJobResult } from "../src/launch/launch-job.js";
import { isValidName } from "../src/names.js";
import type { NodeCommand, ToRequester } from "../src/protocol/bus-messages.js";
import { decodeNodeCommand, decodeToRequester } from "../src/protocol/bus-parse.js";
import { guarded } from "../src/edge-guard.js";
import { connectCluster } from "../src/cluster-connection.js";
import { InstanceLogs } from "../src/registry/instance-logs.js";
import { InstanceRegistry } from "../src/registry/instance-registry.js";
import { NodeRegistry, type NodeRecord } from "../src/registry/node-registry.js";
import { HEARTBEAT_MS } from "../src/registry/liveness.js";
import { NodeReaper } from "../src/launch/node-reaper.js";
import type { Requester } from "../src/launch/requester.js";
import { Instance } from "./instance.js";
import type { InstanceEnd } from "./instance-host.js";
import { LaunchAttempts } from "./launch-attempts.js";
import { LaunchWorkers, handBack } from "./launch-workers.js";
import { NodeFdBudget } from "./node-fd-budget.js";
import { NodeCapacity, type LaunchSlot } from "./launch-slot.js";
import { defaultNodeId } from "./node-id.js";
import { NodeCounts } from "./node-counts.js";
import { FENCED, NodeFencing, type NodeSideHost } from "./node-fencing.js";
import { RegistryRebuild } from "./registry-rebuild.js";
import { WarmPools } from "./warm-pool.js";
import { SharedHosts } from "./shared-hosts.js";
import { onMessage, subscribe, unsubscribe } from "../src/pubsub.js";

export interface ServmanNodeOptions {
  config: ServmanConfig;
  /** Root logger; the node binds its id. Default: silent. */
  logger?: Logger;
  /** Tasks of the configuration this node offers. Default: all of them. */
  tasks?: readonly string[];
}

export class ServmanNode {
  readonly id: string;
  readonly keys: Keys;
  private readonly config: ServmanConfig;
  private readonly logger: Logger;
  private readonly tasks: ReadonlyMap<string, TaskConfig>;
  private readonly redis: RedisClient;
  private readonly sub: RedisClient;
  private readonly registry: InstanceRegistry;
  private readonly nodeRegistry: NodeRegistry;
  private readonly logs: InstanceLogs;
  private readonly replyChannel: string;
  private readonly requester: Requester;
  private readonly reaper: NodeReaper;
  private readonly attempts: LaunchAttempts;
  private readonly rebuild: RegistryRebuild;
  private readonly workers: LaunchWorkers;
  /** The node's registration, its heartbeat, and its instances' output fenced by it (nodes/node-fencing.ts). */
  private readonly fencing: NodeFencing;
  private readonly instances = new Map<string, Instance>();
  private readonly byChannel = new Map<string, Instance>();
  /** Processes waiting for `start`, per task with `warm` > 0; they take no capacity slot. */
  private readonly warmPools: WarmPools;
  /** Host processes of the tasks with `isolation: "shared"`, each running several instances. */
  private readonly sharedHosts: SharedHosts;
  /** Capacity slots (instances launching, ready or stopping) and launches in progress. */
  private readonly capacity: NodeCapacity;
  /** The slot each instance holds until it retires. */
  private readonly slots = new Map<Instance, LaunchSlot>();
  /** Input it could not use, counted since start (shown in `servman nodes --json`). */
  readonly counts: NodeCounts;
  private state: "new" | "running" | "draining" | "closed" = "new";
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly started = Date.now();
  private readonly fd: NodeFdBudget;
  private closing: Promise<void> | undefined;
  private closedResolve!: () => void;
  private readonly closedPromise = new Promise<void>((resolve) => (this.closedResolve = resolve));
  private readonly host: NodeSideHost;

  constructor(options: ServmanNodeOptions) {
    this.config = options.config;
    this.id = options.config.node.id ?? defaultNodeId();
    this.logger = (options.logger ?? pino({ level: "silent" })).child({ node: this.id });
    this.counts = new NodeCounts(this.logger);
    this.fd = new NodeFdBudget(this.logger);
    const names = options.tasks ?? Object.keys(options.config.tasks);
    const tasks = new Map<string, TaskConfig>();
    for (const name of names) {
      const task = options.config.tasks[name];
      if (!task) throw new ServmanError("unknown_task", `task ${JSON.stringify(name)} is not in the configuration`);
      tasks.set(name, task);
    }
    this.tasks = tasks;
    this.capacity = new NodeCapacity(this.config.node, () => this.updateIntake());
    ({
      keys: this.keys,
      redis: this.redis,
      sub: this.sub,
      replyChannel: this.replyChannel,
      requester: this.requester,
    } = connectCluster({
      redis: this.config.redis,
      prefix: this.config.prefix,
      names: { command: `node:${this.id}`, subscriber: `node-sub:${this.id}` },
      requesterId: `node-${this.id}`,
      logger: this.logger,
    }));
    this.registry = new InstanceRegistry(this.redis, this.keys);
    this.nodeRegistry = new NodeRegistry(this.redis, this.keys);
    this.logs = new InstanceLogs(this.redis, this.keys);
    this.reaper = new NodeReaper({ redis: this.redis, keys: this.keys, requester: this.requester, tasks: this.config.tasks, logger: this.logger, lockDurationMs: this.config.node.lockDurationMs });
    this.attempts = new LaunchAttempts({ nodeId: this.id, incarnation: () => this.fencing.incarnation, registry: this.registry, nodes: this.nodeRegistry, logger: this.logger });
    this.rebuild = new RegistryRebuild({ nodeId: this.id, redis: this.redis, keys: this.keys, registry: this.registry, logger: this.logger, instances: () => this.instances.values() });
    this.fencing = new NodeFencing({
      nodeId: this.id,
      keys: this.keys,
      redis: this.redis,
      sub: this.sub,
      registry: this.registry,
      nodes: this.nodeRegistry,
      rebuild: this.rebuild,
      logs: this.logs,
      logger: this.logger,
      instances: this.instances,
      byChannel: this.byChannel,
      slots: this.slots,
      record: () => this.record(),
      closed: () => this.state === "closed",
      intakeChanged: () => this.updateIntake(),
    });
    const runJob = (job: Job<LaunchJobData, LaunchJobResult>, token: string | undefined) => this.process(job, token);
    this.workers = new LaunchWorkers({ redis: this.config.redis, nodeId: this.id, keys: this.keys, node: this.config.node, logger: this.logger, process: runJob });
    onMessage(
      this.sub,
      guarded("redis message", this.counts.fault, (channel: string, payload: string) => this.onBus(channel, payload)),
    );
    this.host = {
      keys: this.keys,
      baseDir: this.config.baseDir,
      shutdownDeadlineMs: this.config.node.shutdownDeadlineMs,
      settled: () => this.redis.ping().then(() => {}),
      countInvalid: () => this.counts.invalidOutput++,
      fault: this.counts.fault,
      badBus: (problem) => this.counts.badBus(problem),
      countDroppedForBackpressure: (count) => (this.counts.droppedForBackpressure += count),
      takeWarm: (task) => this.warmPools.take(task),
      placeShared: (task, instance) => this.sharedHosts.place(task, instance),
    };
    this.sharedHosts = new SharedHosts({ cwd: this.config.baseDir, logger: this.logger, countInvalid: () => this.counts.invalidOutput++ });
    // A node that takes no launches keeps no process waiting for one. A shared task's `warm`
    // counts host processes, kept by sharedHosts rather than a pool.
    this.warmPools = new WarmPools({
      tasks: this.config.node.capacity > 0 ? [...this.tasks.values()].filter((t) => t.isolation !== "shared") : [],
      cwd: this.config.baseDir,
      logger: this.logger,
      mayStart: () => this.state === "running" && !this.fd.near(),
      room: () => this.config.node.capacity - this.capacity.running,
      batch: this.config.node.launchConcurrency,
    });
  }

  /** Live instances (launching, ready or stopping). */
  get running(): number {
    return this.capacity.running;
  }

  /** Registers the node and starts claiming launches. */
  async start(): Promise<void> {
    if (this.state !== "new") throw new ServmanError("internal", "a node starts once");
    this.state = "running";
    this.warmPools.start();
    if (this.config.node.capacity > 0) this.sharedHosts.start(this.tasks.values());
    await this.fencing.beat();
    this.heartbeatTimer = setInterval(() => void this.fencing.beat(), HEARTBEAT_MS);
    // Back from a reconnect: RedisClient may have restarted empty; the heartbeat finds out at once.
    this.redis.on("ready", () => {
      if (this.state !== "closed") void this.fencing.beat();
    });
    await subscribe(this.sub, this.replyChannel, this.keys.nodeControl(this.id));
    this.reaper.start();
    this.workers.start(this.tasks.keys());
    this.logger.info({ tasks: [...this.tasks.keys()], capacity: this.config.node.capacity, openFileLimit: this.fd.limit }, "node started");
    this.fd.checkCapacity(this.config.node.capacity, this.config.node.capacity + this.warmPools.max);
  }

  /** Text waiting to be written to one of this node's instance processes (0 if it has none). */
  queuedBytes(instance: string): number {
    return this.instances.get(instance)?.queuedBytes ?? 0;
  }

  /** Per task with a warm pool: processes waiting for a launch now. */
  get warm(): Record<string, number> {
    return this.warmPools.counts();
  }

  private onBus(channel: string, payload: string): void {
    const instance = this.byChannel.get(channel);
    if (instance) return this.fencing.deliver(instance, channel, payload);
    // Results of relaunches this node's reaper asked for, and commands (drain).
    if (channel === this.replyChannel) {
      const decoded = decodeToRequester(payload);
      if (decoded.ok) this.requester.handleReply(decoded.message);
      else this.counts.badBus(decoded.problem);
    } else if (channel === this.keys.nodeControl(this.id)) {
      const decoded = decodeNodeCommand(payload);
      if (decoded.ok) this.onCommand(decoded.message);
      else this.counts.badBus(decoded.problem);
    }
  }

  /** What the heartbeat writes. */
  private record(): Omit<NodeRecord, "fenced"> {
    return {
      id: this.id,
      host: hostname(),
      pid: process.pid,
      tasks: [...this.tasks.keys()],
      capacity: this.config.node.capacity,
      running: this.capacity.running,
      started: this.started,
      seen: Date.now(),
      draining: this.state !== "running",
      invalidOutput: this.counts.invalidOutput,
      internalErrors: this.counts.internalErrors,
      badBusMessages: this.counts.badBusMessages,
      droppedForBackpressure: this.counts.droppedForBackpressure,
      warm: this.warm,
    };
  }

  /** Publishes for the node itself (launch replies): fenced like its instances' output. */
  private publish(channel: string, payload: string): void {
    this.fencing.publish(channel, payload);
  }

  private reply(data: LaunchJobData, message: ToRequester): void {
    if (typeof data.reply === "string" && data.reply !== "") this.publish(data.reply, JSON.stringify(message));
  }

  /** Pauses claiming while full, resumes when a slot frees. `pause(true)`: inside a processor, waiting for active jobs would wait for its own. */
  private updateIntake(): void {
    // Between fencing and registering again the node's claims would be refused: it takes no jobs.
    this.workers.setOpen(this.state === "running" && this.capacity.open && !this.fencing.rejoining);
  }

  private async process(job: Job<LaunchJobData, LaunchJobResult>, token: string | undefined): Promise<LaunchJobResult> {
    // Jobs may come from other backends: nothing in `data` is trusted until checked.
    const data: LaunchJobData = typeof job.data === "object" && job.data !== null ? job.data : ({} as LaunchJobData);
    const fail = (code: ErrorCode, message: string): never => {
      if (isValidName(data.instance)) {
        this.reply(data, { type: "launch_error", instance: data.instance, token: data.token ?? "", code, message });
      }
      throw new UnrecoverableError(`${code}: ${message}`);
    };
    if (!isValidName(data.instance)) return fail("bad_request", "job data.instance must be a valid instance id");
    const queueTask = this.keys.taskOfQueue(job.queueName);
    if (data.task !== queueTask) return fail("bad_request", `job data.task must be ${JSON.stringify(queueTask)}`);
    const task = this.tasks.get(data.task);
    if (!task) return fail("unknown_task", `node ${this.id} does not offer ${data.task}`);
    if (typeof data.deadline === "number" && data.deadline > 0 && Date.now() > data.deadline) {
      const expired = await this.attempts.pastDeadline(data);
      if (expired) return fail(expired.code, expired.message);
    }
    // This node failed the job already: a node that has not tried it gets it first.
    if (await this.attempts.standAside(data)) return handBack(job, token);
    // Another node may have files to spare: hand the job back rather than fail it.
    if (this.fd.refusesLaunch()) return handBack(job, token);
    const slot = this.state === "running" ? this.capacity.take() : null;
    if (!slot) {
      this.updateIntake();
      return handBack(job, token);
    }
    let instance: Instance | undefined;
    let claimedAt = 0;
    // The registration this launch is claimed under (nodes/node-fencing.ts).
    const incarnation = this.fencing.incarnation;
    try {
      const owner = launchSpec(data);
      const claim = this.fencing.claimer(data.instance, data.token ?? "", incarnation, owner);
      const claimed = await this.attempts.claim(data, task, claim).catch((err: Error) => {
        slot.release();
        // Not the node the cluster knows (declared dead, or not registered again yet): another may launch it.
        if (err === FENCED) return null;
        return fail("unavailable", `could not claim the launch: ${err.message}`);
      });
      if (claimed === null) {
        void this.fencing.beat();
        return handBack(job, token);
      }
      if (claimed.kind !== "claimed") slot.release();
      // Another run of this same job launched it, and replied: this one only completes.
      if (claimed.kind === "launched") return claimed.result;
      if (claimed.kind === "taken") return fail("already_exists", `instance ${JSON.stringify(data.instance)} already exists`);
      claimedAt = Date.now();
      this.attempts.begin(data.instance);
      const { task: taskName, owner: ownerSession, ownerUser, options, args } = owner;
      this.rebuild.track(data.instance, { task: taskName, owner: ownerSession, ownerUser, options, args, token: data.token ?? "", created: claimedAt, incarnation });
      if (this.state !== "running") {
        // The node began to drain while the claim was in flight: give the id back.
        slot.release();
        await this.registry.removeIfNode(data.instance, this.id, owner.ownerUser, incarnation);
        return fail("launch_failed", "the node is draining");
      }
      await this.logs.reset(data.instance);
      if (incarnation !== this.fencing.incarnation) throw new ServmanError("launch_failed", "the node was declared dead during the launch");
      const host = this.fencing.hostFor(this.host, incarnation, (i, end) => this.retire(i, end, incarnation));
      instance = new Instance(data.instance, task, owner.ownerUser, host, this.logger.child({ instance: data.instance, task: task.name }), owner.owner !== null);
      // From here the instance's retirement frees the slot.
      this.slots.set(instance, slot);
      this.instances.set(instance.id, instance);
      const channel = this.keys.instanceChannel(instance.id);
      this.byChannel.set(channel, instance);
      await Promise.all([subscribe(this.sub, channel), instance.start(owner.args)]);
      // The join the launch carries goes to the service at once; `launched` waits for its answer.
      const joining = owner.join ? instance.joinAtLaunch(owner.join) : undefined;
      const readyAt = Date.now();
      this.rebuild.ready(instance.id, readyAt);
      await this.fencing.recordReady(instance, incarnation, readyAt);
      this.logger.info({ instance: instance.id, task: task.name, pid: instance.pid }, "instance ready");
      const answer = joining ? await joining : {};
      this.reply(data, { type: "launched", instance: instance.id, node: this.id, token: data.token ?? "", ...answer });
      return { instance: instance.id, node: this.id };
    } catch (err) {
      if (err instanceof UnrecoverableError) throw err;
      const e = toServmanError(err);
      // Without an instance, no retirement frees the slot.
      if (!instance) slot.release();
      const next = await this.attempts.afterFailure(job, data, task, e, { instance, claimedAt, draining: this.state !== "running", incarnation });
      // Fenced mid-launch: the reaper gave the reservation back for this job's next run, or another
      // run holds it. That run, not this one, answers the requester.
      if (instance && this.fencing.isStale(instance)) return handBack(job, token);
      if (next === "retry") return handBack(job, token);
      return fail(next.code, next.message);
    } finally {
      if (!instance) slot.release();
      if (claimedAt > 0) {
        this.attempts.end(data.instance);
        // A claim that never got an instance (or whose instance retired) has nothing to restore.
        if (!this.instances.has(data.instance)) this.rebuild.untrack(data.instance);
      }
      slot.endLaunch();
    }
  }

  private async retire(instance: Instance, end: InstanceEnd, incarnation: string): Promise<void> {
    if (this.fencing.isStale(instance)) return this.fencing.retireStale(instance, incarnation);
    this.instances.delete(instance.id);
    this.rebuild.untrack(instance.id);
    const channel = this.keys.instanceChannel(instance.id);
    this.byChannel.delete(channel);
    this.slots.get(instance)?.release();
    this.slots.delete(instance);
    this.logger.debug({ instance: instance.id, ...end }, "retiring instance");
    await Promise.allSettled([
      unsubscribe(this.sub, channel),
      // A launch that failed is settled by its job: given back for another attempt, or removed.
      this.attempts.holds(instance.id) ? Promise.resolve() : this.registry.removeIfNode(instance.id, this.id, instance.ownerUser, incarnation),
      this.logs.ended({ instance: instance.id, task: instance.task.name, node: this.id, ...end, endedAt: Date.now(), ...instance.diagnostics }),
    ]);
  }

  private onCommand(command: NodeCommand): void {
    if (command.type !== "drain") return;
    const deadlineMs = typeof command.deadlineMs === "number" && command.deadlineMs > 0 ? command.deadlineMs : this.config.node.shutdownDeadlineMs;
    this.logger.info({ deadlineMs }, "drain requested through Redis");
    void this.drain(deadlineMs);
  }

  /** Settles once the node has closed, however that came about (signal, `servman drain`, close()). */
  get closed(): Promise<void> {
    return this.closedPromise;
  }

  /**
   * Stops taking launches, asks every instance to shut down within `deadlineMs`, kills those
   * still running after it, then closes. Idempotent.
   */
  drain(deadlineMs = this.config.node.shutdownDeadlineMs): Promise<void> {
    return this.shutdown(deadlineMs);
  }

  /**
   * Closes now: every instance is killed, not asked. Also cuts short a drain in progress.
   * Idempotent.
   */
  close(): Promise<void> {
    if (this.closing) {
      for (const instance of this.instances.values()) instance.kill();
      return this.closing;
    }
    return this.shutdown(0);
  }

  private shutdown(deadlineMs: number): Promise<void> {
    this.closing ??= (async () => {
      this.state = "draining";
      this.updateIntake();
      this.logger.info({ deadlineMs, instances: this.instances.size }, deadlineMs > 0 ? "node draining" : "node closing");
      const warmClosed = this.warmPools.close();
      await this.fencing.beat();
      const all = [...this.instances.values()];
      for (const instance of all) {
        // A launch still waiting for `ready` fails now (its client hears launch_failed) rather
        // than holding the drain up for the task's readyTimeoutMs.
        if (deadlineMs > 0 && instance.phase !== "launching") instance.stop(null, deadlineMs);
        else instance.abort(deadlineMs > 0 ? "the node is draining" : "the node is closing");
      }
      await this.workers.close(deadlineMs === 0);
      await Promise.allSettled(all.map((i) => i.ended));
      await Promise.all([warmClosed, this.sharedHosts.close()]);
      this.state = "closed";
      clearInterval(this.heartbeatTimer);
      this.reaper.close();
      await this.requester.close();
      await this.nodeRegistry
        .unregister(this.id, [...this.tasks.keys()])
        .catch((err: unknown) => this.logger.warn({ err }, "could not unregister the node; its record expires and a reaper removes it"));
      await Promise.allSettled([this.sub.quit(), this.redis.quit()]);
      this.logger.info("node closed");
      this.closedResolve();
    })();
    return this.closing;
  }
}
