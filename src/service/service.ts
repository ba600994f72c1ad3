/**
 * The service SDK: what a `module` task's process uses to talk to its node (docs/task-protocol.md). Subclass
 * `Service`, mark action handlers with `@action()` (or register them with `handle`), override the
 * lifecycle hooks you need, and call `runService(MyService)` as the module's last line.
 *
 * ```ts
 * class Echo extends Service {
 *   @action() say(client: string, data: unknown) { this.send(client, "said", data); }
 * }
 * runService(Echo);
 * ```
 */
import { ActionDispatcher } from "../actions.js";
import type { LeaveReason, NodeToService, ServiceToNode } from "../protocol/task-messages.js";
import { connectTransport, type ServiceTransport } from "./service-transport.js";
import { isHosted, sharedHostHook } from "./shared-host-hook.js";

/** How often the SDK tells its node it is alive (task setting livenessTimeoutMs watches it). */
const HEARTBEAT_MS = 2_000;

/** What `onJoin` may return: true / undefined accept, false rejects, a string rejects with that reason. */
export type JoinDecision = boolean | string | undefined | void;

/** Arguments every action handler receives. */
export type ServiceActionArgs = [client: string, data: unknown, channel: string | undefined];

/** Base class of a service. `Args` types the launch arguments. */
export class Service<Args extends Record<string, unknown> = Record<string, unknown>> extends ActionDispatcher<ServiceActionArgs> {
  /** This instance's id. Set before `onStart`. */
  instance = "";
  /** The task's name. Set before `onStart`. */
  task = "";
  /** The launch arguments. Set before `onStart`. */
  args = {} as Args;
  readonly #clients = new Map<string, string | null>();
  /** Joins whose `onJoin` has not answered yet; a leave meanwhile removes the client from here. */
  readonly #joining = new Set<string>();
  #transport: ServiceTransport | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #stopping = false;
  #dropped = 0;
  /** Sends dropped since output was last accepted (reported on stderr when the run ends). */
  #dropRun = 0;

  /**
   * Bound on messages waiting to be written to the node (this tick's batch plus the channel's
   * queue): past it, `send` and `broadcast` drop the message, count it in `dropped` and return
   * false, and stderr (the instance's log) says so, with the count once sends are accepted
   * again. Default 10 000. A service that sends faster than its node reads should pace itself on
   * `writable` / `drain()` well before that. Only `send`/`broadcast` are dropped: replies to
   * joins, kicks, heartbeats and `stop` always go.
   */
  maxPendingSends = 10_000;

  /** `send`s and `broadcast`s dropped so far because `maxPendingSends` messages were waiting. */
  get dropped(): number {
    return this.#dropped;
  }

  /** False while the channel to the node is full: slow down, `await this.drain()`. */
  get writable(): boolean {
    return this.#transport?.writable ?? true;
  }

  /** Resolves once the channel to the node has room again (at once if it has). */
  drain(): Promise<void> {
    return this.#transport?.drained?.() ?? Promise.resolve();
  }

  /** Joined clients: client id -> user id (null without tickets). */
  get clients(): ReadonlyMap<string, string | null> {
    return this.#clients;
  }

  /** Called once before the instance is ready; the launch completes when it resolves. */
  onStart(): void | Promise<void> {}

  /** A client asks to join. Default: accept everyone. */
  onJoin(_client: string, _user: string | null, _data: unknown): JoinDecision | Promise<JoinDecision> {
    return true;
  }

  /** A client left, disconnected or was kicked. */
  onLeave(_client: string, _reason: LeaveReason): void {}

  /** The node asks the instance to end within `deadlineMs`; the process exits when this resolves. */
  onShutdown(_deadlineMs: number): void | Promise<void> {}

  /** A message whose action has no handler. Default: logged on stderr. */
  onUnknownAction(client: string, action: string, _data: unknown, _channel: string | undefined): void {
    process.stderr.write(`servman service: no handler for action ${JSON.stringify(action)} (from ${client})\n`);
  }

  /** A handler threw or rejected. Default: logged on stderr; the instance goes on. */
  onError(err: unknown): void {
    process.stderr.write(`servman service: handler failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }

  #send(message: ServiceToNode): Promise<void> {
    return this.#transport ? this.#transport.send(message) : Promise.resolve();
  }

  /** Queues `message` unless `maxPendingSends` are waiting; false when it was dropped. */
  #offer(message: ServiceToNode): boolean {
    const pending = this.#transport?.pending ?? 0;
    if (pending >= this.maxPendingSends) {
      this.#dropped++;
      if (this.#dropRun++ === 0) process.stderr.write(`servman service: ${pending} messages wait to be written to the node (maxPendingSends); dropping sends until there is room\n`);
      return false;
    }
    if (this.#dropRun > 0) {
      process.stderr.write(`servman service: dropped ${this.#dropRun} sends while the output was full (${this.#dropped} in all)\n`);
      this.#dropRun = 0;
    }
    void this.#send(message);
    return true;
  }

  // send and broadcast stay void (a handler may `return this.send(...)`): a drop shows in `dropped`.
  /**
   * Sends to one client or to several. Clients not joined are skipped by the node. Dropped (and
   * counted in `dropped`) when `maxPendingSends` messages wait; pace on `writable` / `drain()`.
   */
  send(to: string | readonly string[], action: string, data?: unknown, channel?: string): void {
    const message: ServiceToNode = { type: "send", to: typeof to === "string" ? [to] : [...to], action, data: data ?? null };
    if (channel !== undefined) message.channel = channel;
    this.#offer(message);
  }

  /** Sends to every joined client; dropped past `maxPendingSends`, as `send`. */
  broadcast(action: string, data?: unknown, channel?: string): void {
    const message: ServiceToNode = { type: "send", action, data: data ?? null };
    if (channel !== undefined) message.channel = channel;
    this.#offer(message);
  }

  /** Removes a client; it receives `closed` with reason `kicked`. */
  kick(client: string, reason?: string): void {
    this.#clients.delete(client);
    void this.#send(reason === undefined ? { type: "kick", client } : { type: "kick", client, reason });
  }

  /** Ends the instance: joined clients receive `closed` with reason `stopped`. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    await this.#send({ type: "stop" });
    this.#end(0);
  }

  /**
   * The service is over: its process exits with `code`, or in a shared host (task isolation
   * `"shared"`) only this object ends and the host goes on running the others.
   */
  #end(code: number): void {
    clearInterval(this.#heartbeat);
    const transport = this.#transport;
    if (transport && isHosted(transport)) transport.end(code);
    else process.exit(code);
  }

  /** Connects to the node and runs until told to shut down. Called by {@link runService}. */
  run(transport: ServiceTransport = connectTransport()): void {
    this.#transport = transport;
    transport.onDisconnect(() => this.#end(0));
    transport.onMessage((message) => this.#receive(message));
  }

  #receive(message: NodeToService): void {
    switch (message.type) {
      case "message":
        if (!this.dispatchAction(message.action, [message.client, message.data, message.channel], (err) => this.onError(err))) {
          this.onUnknownAction(message.client, message.action, message.data, message.channel);
        }
        break;
      case "join":
        void this.#join(message.client, message.user, message.data);
        break;
      case "leave":
        this.#clients.delete(message.client);
        this.#joining.delete(message.client);
        this.#guard(() => this.onLeave(message.client, message.reason));
        break;
      case "start":
        void this.#start(message);
        break;
      case "shutdown":
        void this.#shutdown(message.deadlineMs);
        break;
    }
  }

  #guard(fn: () => unknown): void {
    try {
      const result = fn();
      if (result instanceof Promise) result.catch((err) => this.onError(err));
    } catch (err) {
      this.onError(err);
    }
  }

  async #start(message: Extract<NodeToService, { type: "start" }>): Promise<void> {
    this.instance = message.instance;
    this.task = message.task;
    this.args = message.args as Args;
    try {
      await this.onStart();
    } catch (err) {
      process.stderr.write(`servman service: onStart failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      return this.#end(1);
    }
    await this.#send({ type: "ready" });
    // Proof of life for the node's liveness check: a blocked event loop stops sending it.
    this.#heartbeat = setInterval(() => void this.#send({ type: "heartbeat" }), HEARTBEAT_MS).unref();
  }

  async #join(client: string, user: string | null, data: unknown): Promise<void> {
    this.#joining.add(client);
    let decision: JoinDecision;
    try {
      decision = await this.onJoin(client, user, data);
    } catch (err) {
      this.onError(err);
      decision = "join handler failed";
    }
    // The client left (or disconnected) while onJoin ran: the node no longer waits for an answer.
    if (!this.#joining.delete(client)) return;
    if (decision === true || decision === undefined) {
      this.#clients.set(client, user);
      await this.#send({ type: "accept", client });
    } else {
      await this.#send(typeof decision === "string" ? { type: "reject", client, reason: decision } : { type: "reject", client });
    }
  }

  async #shutdown(deadlineMs: number): Promise<void> {
    try {
      await this.onShutdown(deadlineMs);
    } catch (err) {
      this.onError(err);
    }
    this.#end(0);
  }
}

/**
 * Runs a service in this process: pass the class (constructed with no arguments) or an instance.
 * Call it once, as the module's last line. In a shared host (task isolation `"shared"`,
 * docs/task-protocol.md#shared-isolation) it registers the class, which the host constructs once
 * per instance, and returns undefined; an instance passed there is refused (it throws).
 */
// Any service's own argument type: runService only constructs and starts it.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function runService<S extends Service<any>>(service: S | (new () => S)): S {
  const host = sharedHostHook();
  if (host) {
    host.register(service);
    return undefined as unknown as S;
  }
  const instance = typeof service === "function" ? new service() : service;
  instance.run();
  return instance;
}

export { action } from "../actions.js";
export type { LeaveReason } from "../protocol/task-messages.js";
