/**
 * One instance: its child process, the task protocol with it, and the clients joined to it.
 * The node feeds it what arrives on the instance's channel; it publishes what the service sends.
 */
import type { Logger } from "pino";
import type { TaskConfig } from "../src/config/options.js";
import { ServmanError } from "../src/errors.js";
import { MESSAGE_PREFIX, type ToRequester, type ToSession } from "../src/protocol/bus-messages.js";
import { decodeToInstance } from "../src/protocol/bus-parse.js";
import { checkServiceMessage, type NodeToService, type ServiceToNode } from "../src/protocol/task-messages.js";
import type { ChildChannel } from "./child-channel.js";
import { InstanceOutput } from "./instance-output.js";
import { MemberDelivery } from "./member-delivery.js";
import { ClientSendSeqs } from "./client-send-seqs.js";
import { RestartPolicy } from "./restart-policy.js";
import { startInstanceProcess } from "./instance-process.js";
import type { InstanceRuntime } from "./instance-runtime.js";
import type { InstanceEnd, InstanceHost, InstancePhase } from "./instance-host.js";
import { HeldMessages } from "./held-messages.js";
import { InstanceHealth } from "./instance-health.js";
import { InstanceMembers } from "./instance-members.js";
import { StalledDelivery } from "./stalled-delivery.js";
import type { LaunchJoin } from "../src/launch/launch-job.js";

/** How long the join a launch carried waits for the service's answer (as a gateway's join does). */
const LAUNCH_JOIN_TIMEOUT_MS = 10_000;

export class Instance {
  readonly id: string;
  readonly task: TaskConfig;
  phase: InstancePhase = "launching";
  private readonly members: InstanceMembers;
  /** Reply channels waiting for this instance to have stopped. */
  private readonly stopReplies: string[] = [];
  private stopAsked = false;
  /** True once clients were told the instance ended. */
  private announced = false;
  /** Its process, or its place in a shared host; none between two (a restart's wait). */
  private runtime: InstanceRuntime | undefined;
  private channel: ChildChannel | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private args: Record<string, unknown> = {};
  private readonly restarts: RestartPolicy;
  /** What clients sent while the process restarts, delivered once it is ready again. */
  private readonly held: HeldMessages;
  /** Client messages the process is too far behind to take are dropped, not queued. */
  private readonly stalls: StalledDelivery;
  private readonly output: InstanceOutput;
  private readonly delivery: MemberDelivery;
  /** The highest numbered send received from each client (client-send-seqs.ts). */
  private readonly sendSeqs = new ClientSendSeqs();
  private readonly health: InstanceHealth;
  private readyWaiter: { resolve(): void; reject(err: ServmanError): void } | undefined;
  /** How each `message` event of this instance begins, up to its action (see eventText). */
  private readonly eventPrefix: string;
  private endResolve!: (end: InstanceEnd) => void;
  /** Settles once the process has exited and its output is drained. */
  readonly ended: Promise<InstanceEnd>;

  constructor(
    id: string,
    task: TaskConfig,
    /** The owning user (a ticket's `sub`), if any: the registry keeps per-user counts. */
    readonly ownerUser: string | null,
    private readonly host: InstanceHost<Instance>,
    private readonly logger: Logger,
    /** True when a client launched it (the launch named an owner session): see `emptyTimeoutFor`. */
    readonly owned = false,
  ) {
    this.id = id;
    this.task = task;
    this.eventPrefix = `{"type":"message","instance":${JSON.stringify(id)},"action":`;
    this.restarts = new RestartPolicy(task);
    // Held across a restart within the same bound: released at once, they must fit the new queue.
    this.held = new HeldMessages(task.maxQueuedBytes);
    const told = (client: string, count: number) => this.toSession(client, { type: "dropped", instance: this.id, count });
    this.stalls = new StalledDelivery(task.maxQueuedBytes, { dropped: told, countDropped: (count) => host.countDroppedForBackpressure(count) }, logger);
    this.output = new InstanceOutput(
      logger,
      () => host.countInvalid(),
      (source, text) => host.log(this, source, text),
    );
    this.ended = new Promise((resolve) => (this.endResolve = resolve));
    this.health = new InstanceHealth(
      {
        task,
        owned,
        isReady: () => this.phase === "ready",
        joinedCount: () => this.members.size,
        pendingCount: () => this.members.pendingSize,
        process: () => this.runtime,
        kill: () => this.kill(),
        stop: (reply) => this.stop(reply),
        note: (text) => this.output.line("servman", text),
        timer: (ms, fn) => this.timer(ms, fn),
      },
      logger,
    );
    this.delivery = new MemberDelivery(id, { ...host, sessionChannel: (c) => host.keys.sessionChannel(c), gatewayChannel: (g) => host.keys.gatewayChannel(g, id) }, logger);
    this.members = new InstanceMembers(id, {
      toService: (message) => this.toService(message),
      toJoinReply: (channel, message) => this.host.publish(channel, JSON.stringify(message)),
      deliver: (client, payload) => this.delivery.deliver(client, payload),
      send: (payload, clients) => this.delivery.send(payload, clients),
      route: (client, gateway) => this.delivery.route(client, gateway),
      forget: (client) => this.delivery.discard(client),
      changed: () => this.health.armIdle(),
    });
  }

  get pid(): number {
    return this.runtime?.pid ?? 0;
  }

  /** Text handed to the process and not yet written to it (bounded by the task's `maxQueuedBytes`). */
  get queuedBytes(): number {
    return this.channel?.queuedBytes ?? 0;
  }

  /** Starts the process and resolves once the service says `ready` (else `launch_failed` / `timeout`). */
  start(args: Record<string, unknown>): Promise<void> {
    this.args = args;
    this.spawnProcess();
    const ready = new Promise<void>((resolve, reject) => (this.readyWaiter = { resolve, reject }));
    this.timer(this.task.readyTimeoutMs, () => {
      if (this.phase !== "launching") return;
      this.failLaunch(new ServmanError("timeout", `instance did not become ready within ${this.task.readyTimeoutMs} ms`));
      this.kill();
    });
    return ready;
  }

  /**
   * Hands the join a launch carried to the ready service (docs/protocol.md#launch-and-join) and
   * settles with its answer; never rejects. A service silent past {@link LAUNCH_JOIN_TIMEOUT_MS}
   * hears a `leave` and the join counts as refused, as a gateway's join would time out.
   */
  joinAtLaunch(join: LaunchJoin): Promise<{ joined: boolean; reason?: string }> {
    return new Promise((resolve) => {
      let done = false;
      const settle = (joined: boolean, reason: string | undefined) => {
        if (done) return;
        done = true;
        resolve(joined ? { joined } : { joined, reason: reason ?? "refused by the service" });
      };
      this.members.join(join.client, join.user, settle, join.data, join.gateway);
      this.timer(LAUNCH_JOIN_TIMEOUT_MS, () => {
        if (done || !this.members.isPending(join.client)) return;
        this.members.leave(join.client, "left");
        settle(false, "the service did not answer the join");
      });
    });
  }

  /** Adopts a warm process or starts one, or a place in a shared host (instance-process.ts), and watches its memory. */
  private spawnProcess(): void {
    this.runtime = startInstanceProcess({
      id: this.id,
      task: this.task,
      args: this.args,
      host: this.host,
      output: this.output,
      logger: this.logger,
      onMessage: (value) => this.onServiceMessage(value),
      onClose: (code, signal) => this.onClose(code, signal),
    });
    this.channel = this.runtime.channel;
    this.runtime.watchMemory(this.health);
  }

  private timer(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private toService(message: NodeToService): void {
    this.sendToService(JSON.stringify(message), true);
  }

  /**
   * Sends JSON text to the service, or holds it while the process restarts. A client message
   * (`control` false) the process is too far behind to take is dropped, and its sender told.
   */
  private sendToService(payload: string, control = false): void {
    if (this.phase !== "restarting") {
      const channel = this.channel;
      if (channel && (control || this.stalls.admit(payload, channel.queuedBytes))) channel.send(payload);
    } else {
      this.held.hold(payload);
    }
  }

  private toRequester(channel: string, message: ToRequester): void {
    this.host.publish(channel, JSON.stringify(message));
  }

  private toSession(session: string, message: ToSession): void {
    this.delivery.deliver(session, JSON.stringify(message));
  }

  /** Handles one payload from the instance's channel. */
  handleBus(payload: string): void {
    if (this.phase === "ended") return;
    if (payload.startsWith(MESSAGE_PREFIX)) {
      // Hot path: already the task protocol's `message`, forwarded as it came (a repeat is not).
      if (this.sendSeqs.fresh(payload)) this.sendToService(payload);
      return;
    }
    const decoded = decodeToInstance(payload);
    if (!decoded.ok) return this.host.badBus(decoded.problem);
    const message = decoded.message;
    switch (message.type) {
      case "join":
        this.members.join(message.client, message.user, message.reply, message.data, message.gateway);
        break;
      case "leave":
        this.sendSeqs.forget(message.client);
        this.delivery.discard(message.client);
        this.members.leave(message.client, message.reason);
        break;
      case "stop":
        this.stop(message.reply);
        break;
      case "resume":
        // At once, before the delivery waits for the old gateway: the resuming gateway waits for it.
        if (message.answer === true) this.host.publish(message.reply, this.sendSeqs.resumeAnswer(this.id, message.client));
        this.delivery.handle(message, payload, (client) => this.members.has(client));
        break;
      case "ack":
      case "undelivered":
      case "flushed":
      case "gap":
        this.delivery.handle(message, payload, (client) => this.members.has(client));
        break;
      case "message":
        if (message.seq === undefined || this.sendSeqs.note(message.client, message.seq)) this.sendToService(payload);
        break;
    }
  }

  private onServiceMessage(value: unknown): void {
    if (typeof value === "string") {
      try {
        value = JSON.parse(value);
      } catch {
        return this.output.reportInvalid("service sent a string that is not JSON");
      }
    }
    const parsed = checkServiceMessage(value);
    if (!parsed.ok) return this.output.reportInvalid(parsed.problem);
    this.health.heard(parsed.message.type === "heartbeat");
    try {
      this.apply(parsed.message);
    } catch (err) {
      // The entry point of a service's output: one message it cannot have sent on purpose must
      // not take the node, and every other instance on it, down.
      this.output.reportInvalid(`${parsed.message.type} could not be handled: ${(err as Error).message}`);
      this.host.fault(err, "service message");
    }
  }

  private apply(message: ServiceToNode): void {
    switch (message.type) {
      case "ready":
        if (this.phase === "restarting") this.resume();
        else if (this.phase === "launching") {
          this.phase = "ready";
          this.health.armReady();
          this.readyWaiter?.resolve();
          this.readyWaiter = undefined;
        }
        break;
      case "accept":
        this.members.accept(message.client);
        break;
      case "reject":
        this.members.reject(message.client, message.reason);
        break;
      case "send":
        this.members.send(this.eventText(message), message.to);
        break;
      case "kick":
        this.members.kick(message.client);
        break;
      case "heartbeat":
        break;
      case "stop":
        if (this.stopAsked) break;
        this.stopAsked = true;
        this.enterStopping();
        this.timer(this.host.shutdownDeadlineMs, () => this.kill());
        break;
    }
  }

  /**
   * A service's `send` as the client protocol's `message` event: JSON.stringify of
   * `{type, instance, action, data, channel?}`, with the instance's part written once.
   */
  private eventText(message: Extract<ServiceToNode, { type: "send" }>): string {
    const channel = message.channel === undefined ? "" : `,"channel":${JSON.stringify(message.channel)}`;
    // Data JSON cannot hold (a function, from a service in this process) is left out, as JSON.stringify does.
    const data = JSON.stringify(message.data ?? null) as string | undefined;
    return `${this.eventPrefix}${JSON.stringify(message.action)}${data === undefined ? "" : `,"data":${data}`}${channel}}`;
  }

  /** What a post-mortem records beyond how the process ended. */
  get diagnostics(): { restarts: number; peakRssMb: number | null; lastLines: string[] } {
    return { restarts: this.restarts.attempts, peakRssMb: this.health.peakRssMb, lastLines: this.output.lastLines() };
  }

  /**
   * Asks the service to shut down within the node's deadline, then kills it. `reply` (if any)
   * receives `stopped` once the process has exited.
   */
  stop(reply: string | null, deadlineMs = this.host.shutdownDeadlineMs): void {
    if (reply !== null) {
      this.stopReplies.push(reply);
      // Tells the requester how long the stop may take, so it waits no less (and no more).
      if (this.phase !== "ended") this.toRequester(reply, { type: "stopping", instance: this.id, deadlineMs });
    }
    if (this.phase === "ended") {
      if (this.announced) this.flushStopReplies();
      return;
    }
    if (this.stopAsked) return;
    this.stopAsked = true;
    if (this.phase === "restarting") {
      // Between two processes: nothing to ask, only a process to end (if one started already).
      if (this.runtime) this.kill();
      else this.finish({ reason: "stopped", code: null, signal: null }, false);
      return;
    }
    if (this.phase === "launching") {
      this.failLaunch(new ServmanError("launch_failed", "instance was stopped before it became ready"));
      this.kill();
      return;
    }
    this.enterStopping();
    this.toService({ type: "shutdown", deadlineMs });
    this.timer(deadlineMs, () => {
      this.logger.warn({ deadlineMs }, "instance did not exit after shutdown; killing it");
      this.kill();
    });
  }

  private enterStopping(): void {
    if (this.phase !== "ready") return;
    this.phase = "stopping";
    this.host.setState(this, "stopping");
  }

  /** Ends the instance now; a launch still in progress fails with `launch_failed: <reason>`. */
  abort(reason: string): void {
    if (this.phase === "launching") this.failLaunch(new ServmanError("launch_failed", reason));
    this.stopAsked = true;
    if (this.phase === "restarting" && !this.runtime) return this.finish({ reason: "stopped", code: null, signal: null }, false);
    this.kill();
  }

  /** Kills the whole process group now (in a shared host: drops this instance from it). */
  kill(): void {
    if (this.runtime && this.phase !== "ended") this.runtime.kill();
  }

  private failLaunch(err: ServmanError): void {
    const waiter = this.readyWaiter;
    this.readyWaiter = undefined;
    waiter?.reject(err);
  }

  private flushStopReplies(): void {
    for (const reply of this.stopReplies.splice(0)) this.toRequester(reply, { type: "stopped", instance: this.id });
  }

  private onClose(code: number | null, signal: NodeJS.Signals | null): void {
    const wasLaunching = this.phase === "launching";
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.health.cancelIdle();
    this.channel?.close();
    this.runtime = undefined;
    const reason: InstanceEnd["reason"] = this.stopAsked ? "stopped" : code === 0 ? "exited" : "crashed";
    if (reason !== "stopped" && !wasLaunching) {
      const delay = this.restarts.next(reason);
      if (delay !== null) return this.beginRestart({ reason, code, signal }, delay);
    }
    this.finish({ reason, code, signal }, wasLaunching);
  }

  /** The process ended and the policy wants it back: clients are told, messages held meanwhile. */
  private beginRestart(end: InstanceEnd, delayMs: number): void {
    this.phase = "restarting";
    this.members.forgetRejoins();
    const attempt = this.restarts.attempts;
    this.logger.warn({ ...end, attempt, delayMs }, "instance ended; restarting it");
    this.host.setState(this, "restarting");
    const event: ToSession = { type: "restarting", instance: this.id, reason: end.reason as "exited" | "crashed", attempt, delayMs };
    this.members.broadcast(event);
    this.timer(delayMs, () => {
      this.spawnProcess();
      this.timer(this.task.readyTimeoutMs, () => {
        if (this.phase !== "restarting") return;
        this.logger.warn({ readyTimeoutMs: this.task.readyTimeoutMs }, "restarted process did not become ready; killing it");
        this.kill();
      });
    });
  }

  /** The restarted process is ready: members join again, held messages follow, clients are told. */
  private resume(): void {
    this.phase = "ready";
    this.host.setState(this, "ready");
    this.members.rejoin();
    const dropped = this.held.release((payload) => this.channel?.send(payload));
    for (const [client, count] of dropped) this.toSession(client, { type: "dropped", instance: this.id, count });
    this.members.broadcast({ type: "restarted", instance: this.id, attempt: this.restarts.attempts });
    this.logger.info({ attempt: this.restarts.attempts, pid: this.pid }, "instance restarted");
    this.health.armReady();
  }

  /** The instance is over: the registry forgets it, then everyone waiting hears how it ended. */
  private finish(end: InstanceEnd, wasLaunching: boolean): void {
    this.phase = "ended";
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.delivery.close();
    const { reason, code, signal } = end;
    if (wasLaunching) {
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      const last = this.output.lastWords();
      this.failLaunch(new ServmanError("launch_failed", `process ${how} before it was ready${last ? `: ${last}` : ""}`));
    }
    const level = reason === "crashed" && !wasLaunching ? "warn" : "info";
    this.logger[level]({ code, signal, reason }, "instance ended");
    void this.host
      .retire(this, end)
      .catch((err: Error) => this.logger.error({ err }, "could not remove the instance from the registry"))
      .finally(() => this.announceEnd(end));
  }

  /** Tells joined clients, pending joiners and stop requesters that the instance is gone. */
  private announceEnd(end: InstanceEnd): void {
    const { reason } = end;
    this.announced = true;
    this.members.end(reason);
    this.flushStopReplies();
    this.endResolve(end);
  }
}
