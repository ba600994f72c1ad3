/**
 * The client SDK (Node and browser): one WebSocket to a gateway, requests that return promises
 * settled by the matching reply, and service messages dispatched by action name.
 *
 * ```ts
 * const client = new ServmanClient("ws://127.0.0.1:8080/v1/connect");
 * client.handle("pong", (instance, data) => console.log(instance, data));
 * await client.connect();
 * const { instance } = await client.launch("heartbeat");
 * await client.join(instance);
 * client.send(instance, "ping", { n: 1 });
 * ```
 *
 * Or per instance: `const room = client.instance(id); room.on("pong", (data) => ...); room.send("ping")`.
 */
import { ActionDispatcher } from "../actions.js";
import { ServmanError, isErrorCode } from "../errors.js";
import { ClientListeners } from "./client-listeners.js";
import { PendingRequests } from "./pending-requests.js";
import { InstanceHandle, type InstanceActionHandler, type InstanceHandleHost } from "./instance-handle.js";
import { CLOSE_NORMAL, CLOSE_POLICY, CLOSE_SESSION_TAKEN } from "../protocol/close-codes.js";
import type { ClosedReason, LaunchOptions } from "../protocol/client-messages.js";
import {
  RECONNECT_DEFAULTS,
  type ClientActionArgs,
  type ClientEvents,
  type LaunchParams,
  type LaunchResult,
  type ReconnectOptions,
  type ServmanClientOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client-options.js";

export { InstanceHandle };
export type { InstanceActionHandler };
export type { HandleOptions } from "../actions.js";
export type { ClientActionArgs, ClientEvents, LaunchParams, LaunchResult, ReconnectOptions, ServmanClientOptions, WebSocketConstructor, WebSocketLike };

interface Welcome {
  session: string;
  resume: string;
  gateway: string;
}

const OPEN = 1;

async function defaultWebSocket(): Promise<WebSocketConstructor> {
  const native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (native) return native;
  const ws = await import("ws");
  return ws.WebSocket;
}

export class ServmanClient extends ActionDispatcher<ClientActionArgs> {
  /** The first gateway URL. */
  readonly url: string;
  /** Every gateway URL; reconnects go round them. */
  readonly urls: readonly string[];
  /** Session id, set by `connect`; it stays the same across resumes. */
  session = "";
  /** Resume token, set by `connect`. */
  resumeToken = "";
  /** Id of the gateway serving this connection. */
  gateway = "";
  private readonly options: ServmanClientOptions;
  private readonly reconnectOptions: Required<ReconnectOptions> | null;
  private ws: WebSocketLike | undefined;
  private urlIndex = 0;
  private readonly pending = new PendingRequests();
  private readonly listeners = new ClientListeners<ClientEvents>();
  /** Instances this client is joined to (what a failed resume reports as lost). */
  private readonly joinedInstances = new Set<string>();
  /** Sends made while reconnecting, as frames; null when connected. */
  private queued: string[] | null = null;
  private closing = false;
  private closedPromise: Promise<void> | undefined;
  private closedResolve: (() => void) | undefined;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Ends the current retry delay early (close()). */
  private wake: (() => void) | undefined;
  /** Per-instance handles (`instance(id)`), until the client leaves the instance or hears it closed. */
  private readonly handles = new Map<string, InstanceHandle>();
  private readonly handleHost: InstanceHandleHost = {
    send: (instance, action, data, channel) => this.send(instance, action, data, channel),
    sendChecked: (instance, action, data, channel) => this.sendChecked(instance, action, data, channel),
    join: (instance, data) => this.join(instance, data),
    leave: (instance) => this.leave(instance),
    stop: (instance) => this.stop(instance),
    reattach: (handle) => {
      const current = this.handles.get(handle.id);
      if (current === handle) return;
      if (current && current.actions().length > 0) throw new ServmanError("bad_request", `instance ${handle.id} has a newer handle; use client.instance(id)`);
      this.handles.set(handle.id, handle);
    },
  };

  /** `url`: one gateway URL, or several (tried in turn when reconnecting). */
  constructor(url: string | readonly string[], options: ServmanClientOptions = {}) {
    super();
    this.urls = typeof url === "string" ? [url] : [...url];
    if (this.urls.length === 0) throw new ServmanError("bad_request", "at least one gateway URL is needed");
    this.url = this.urls[0]!;
    this.options = options;
    this.reconnectOptions = options.reconnect === false ? null : { ...RECONNECT_DEFAULTS, ...(options.reconnect ?? {}) };
  }

  /** Adds a listener. Returns a function that removes it. */
  on<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): () => void {
    return this.listeners.on(event, listener);
  }

  /**
   * The handle of one instance: handlers that hear only its messages (`on`/`off`), and `send`,
   * `sendChecked`, `join`, `leave`, `stop` without repeating its id. The same handle until the
   * client leaves the instance or hears it `closed`; then its handlers are dropped.
   */
  instance(id: string): InstanceHandle {
    let handle = this.handles.get(id);
    if (!handle) this.handles.set(id, (handle = new InstanceHandle(id, this.handleHost)));
    return handle;
  }

  private dropHandle(instance: string): void {
    this.handles.get(instance)?.clear();
    this.handles.delete(instance);
  }

  private emit<E extends keyof ClientEvents>(event: E, ...args: ClientEvents[E]): void {
    this.listeners.emit(event, ...args);
  }

  /** Opens the connection (to the first URL that answers) and resolves with the welcome. */
  async connect(): Promise<{ session: string; gateway: string }> {
    if (this.ws || this.closedPromise) throw new ServmanError("bad_request", "already connected");
    this.closedPromise = new Promise((resolve) => (this.closedResolve = resolve));
    let last: unknown;
    for (let i = 0; i < this.urls.length; i++) {
      try {
        this.urlIndex = i;
        const welcome = await this.open(this.urls[i]);
        this.adopt(welcome);
        return { session: this.session, gateway: this.gateway };
      } catch (err) {
        last = err;
      }
    }
    this.closedPromise = undefined;
    throw last;
  }

  private adopt(welcome: Welcome): void {
    this.session = welcome.session;
    this.resumeToken = welcome.resume;
    this.gateway = welcome.gateway;
  }

  /** One WebSocket: resolves with its welcome; its end triggers a reconnect or the disconnect. */
  private async open(url: string): Promise<Welcome> {
    const Ctor = this.options.WebSocket ?? (await defaultWebSocket());
    const ws = new Ctor(url);
    return new Promise((resolve, reject) => {
      let welcomed = false;
      ws.addEventListener("message", (event: { data: unknown }) => {
        if (typeof event.data !== "string") return;
        let frame: Record<string, unknown>;
        try {
          frame = JSON.parse(event.data) as Record<string, unknown>;
        } catch {
          return;
        }
        if (!welcomed && frame.type === "welcome") {
          welcomed = true;
          this.ws = ws;
          resolve({ session: String(frame.session), resume: String(frame.resume), gateway: String(frame.gateway) });
          return;
        }
        this.onFrame(frame);
      });
      ws.addEventListener("error", () => {
        if (!welcomed) reject(new ServmanError("unavailable", `could not connect to ${url}`));
      });
      ws.addEventListener("close", (event: { code: number; reason: string }) => {
        if (!welcomed) return reject(new ServmanError("unavailable", `connection to ${url} closed (${event.code})`));
        if (this.ws !== ws) return;
        this.ws = undefined;
        const err = new ServmanError("unavailable", `connection closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
        this.pending.rejectAll(err);
        // A reconnect in progress notices by itself (its resume request was just rejected).
        if (this.queued) return;
        // Closed by us, by a policy (1008: ticket, rate), or because another connection took the
        // session (4000): resuming would not help, or would take it back and forth.
        if (this.closing || !this.reconnectOptions || event.code === CLOSE_POLICY || event.code === CLOSE_SESSION_TAKEN) return this.finish(event.code, event.reason);
        this.queued = [];
        void this.reconnect(event.code, event.reason);
      });
    });
  }

  private finish(code: number, reason: string): void {
    const resolve = this.closedResolve;
    if (!resolve) return;
    this.closedResolve = undefined;
    this.queued = null;
    this.emit("disconnect", code, reason);
    resolve();
    this.closedPromise = undefined;
  }

  /** Tries the gateways in turn, with backoff and jitter, until the session is back or time runs out. */
  private async reconnect(code: number, reason: string): Promise<void> {
    const options = this.reconnectOptions!;
    const giveUpAt = Date.now() + options.giveUpAfterMs;
    for (let attempt = 1; !this.closing && Date.now() < giveUpAt; attempt++) {
      const delayMs = Math.round(Math.random() * Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** (attempt - 1)));
      this.emit("reconnecting", attempt, delayMs, code);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.retryTimer = setTimeout(resolve, delayMs);
      });
      if (this.closing) break;
      // Round the list, starting with the next gateway: the last one may be the one that died.
      this.urlIndex = (this.urlIndex + 1) % this.urls.length;
      let welcome: Welcome;
      try {
        welcome = await this.open(this.urls[this.urlIndex]);
      } catch {
        continue;
      }
      try {
        const reply = await this.request({ type: "resume", session: this.session, resume: this.resumeToken }, this.timeout, true);
        this.gateway = welcome.gateway;
        const instances = Array.isArray(reply.instances) ? reply.instances.map(String) : [];
        this.joinedInstances.clear();
        for (const instance of instances) this.joinedInstances.add(instance);
        this.flushQueued();
        this.emit("resumed", instances, this.gateway);
        return;
      } catch (err) {
        const e = err instanceof ServmanError ? err : new ServmanError("internal", String(err));
        if (e.code === "unavailable" || !this.ws) {
          this.ws?.close(CLOSE_NORMAL, "retrying");
          this.ws = undefined;
          continue;
        }
        // The session is gone for good: this connection goes on as a new, empty one.
        this.adopt(welcome);
        const lost = [...this.joinedInstances];
        this.joinedInstances.clear();
        // Queued sends were for instances this new session has not joined.
        this.queued = null;
        this.emit("reset", e);
        for (const instance of lost) {
          this.dropHandle(instance);
          this.emit("closed", instance, "lost");
        }
        return;
      }
    }
    this.finish(code, reason);
  }

  private flushQueued(): void {
    const queued = this.queued ?? [];
    this.queued = null;
    for (const text of queued) this.ws?.send(text);
  }

  /** Handles one frame other than the welcome. Subclasses may extend it. */
  protected onFrame(frame: Record<string, unknown>): void {
    if (this.pending.settle(frame)) return;
    switch (frame.type) {
      case "message": {
        const instance = String(frame.instance);
        const action = String(frame.action);
        const channel = typeof frame.channel === "string" ? frame.channel : undefined;
        const onError = (err: unknown) => this.emit("error", new ServmanError("internal", `action handler failed: ${String(err)}`, { cause: err }));
        // The instance's own handler first, then the client-wide one, then `message` listeners.
        const own = this.handles.get(instance)?.dispatch(action, frame.data, channel, onError) ?? false;
        const handled = this.dispatchAction(action, [instance, frame.data, channel], onError);
        this.emit("message", instance, action, frame.data, channel);
        if (!own && !handled && this.listeners.count("message") === 0) this.onUnknownAction(instance, action, frame.data, channel);
        break;
      }
      case "closed":
        this.joinedInstances.delete(String(frame.instance));
        this.dropHandle(String(frame.instance));
        this.emit("closed", String(frame.instance), frame.reason as ClosedReason);
        break;
      case "dropped":
        this.emit("dropped", String(frame.instance), Number(frame.count));
        break;
      case "restarting":
        this.emit("restarting", String(frame.instance), frame.reason as "exited" | "crashed", Number(frame.attempt), Number(frame.delayMs));
        break;
      case "restarted":
        this.emit("restarted", String(frame.instance), Number(frame.attempt));
        break;
      case "alert":
        this.emit("alert", frame as unknown as ClientEvents["alert"][0]);
        break;
      case "error": {
        const code = isErrorCode(frame.code) ? frame.code : "internal";
        this.emit("error", new ServmanError(code, typeof frame.message === "string" ? frame.message : code));
        break;
      }
    }
  }

  /** A message whose action has no handler and no `message` listener. Default: ignored. */
  protected onUnknownAction(_instance: string, _action: string, _data: unknown, _channel: string | undefined): void {}

  private request(frame: Record<string, unknown>, timeoutMs: number, resuming = false): Promise<Record<string, unknown>> {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN || (this.queued && !resuming)) {
      return Promise.reject(new ServmanError("unavailable", this.queued ? "reconnecting; try again once resumed" : "not connected"));
    }
    return this.pending.send(frame, timeoutMs, (text) => ws.send(text));
  }

  private get timeout(): number {
    return this.options.requestTimeoutMs ?? 30_000;
  }

  /**
   * Launches an instance of `task`; resolves once it is ready. This client becomes its owner.
   * With `join`, it is also joined when the service accepts (`joined: true`); a refusal
   * (`joined: false`, `reason`) leaves the instance running, owned by this client.
   */
  async launch(task: string, params: LaunchParams = {}): Promise<LaunchResult> {
    const options: LaunchOptions = { ...(params.options ?? {}) };
    if (params.timeoutMs !== undefined) options.timeoutMs = params.timeoutMs;
    const frame: Record<string, unknown> = { type: "launch", task, options };
    if (params.args !== undefined) frame.args = params.args;
    if (params.instance !== undefined) frame.instance = params.instance;
    if (params.join !== undefined) frame.join = params.join;
    // The gateway answers no_capacity at timeoutMs; a claimed launch may then still take
    // readyTimeoutMs, once per attempt, and each failed attempt pushes that deadline back.
    const reply = await this.request(frame, (options.timeoutMs ?? 30_000) + (this.options.launchGraceMs ?? 90_000));
    const result: LaunchResult = { instance: String(reply.instance), node: String(reply.node) };
    if (typeof reply.joined === "boolean") {
      result.joined = reply.joined;
      if (reply.joined) this.joinedInstances.add(result.instance);
      else result.reason = typeof reply.reason === "string" ? reply.reason : "";
    }
    return result;
  }

  /** Joins an instance; rejects with `join_rejected` if its service refuses. */
  async join(instance: string, data?: unknown): Promise<void> {
    await this.request(data === undefined ? { type: "join", instance } : { type: "join", instance, data }, this.timeout);
    this.joinedInstances.add(instance);
  }

  /**
   * Sends one message to an instance's service, fire and forget: no id, no reply, nothing to await
   * (so nothing can go unhandled). Errors arrive as `error` events tied to no send; use
   * `sendChecked` to hear the error of one message.
   */
  send(instance: string, action: string, data?: unknown, channel?: string): void {
    const frame: Record<string, unknown> = { type: "send", instance, action };
    if (data !== undefined) frame.data = data;
    if (channel !== undefined) frame.channel = channel;
    if (this.queued) {
      // Reconnecting: kept, in order, and sent once the session is back.
      if (this.queued.length >= this.reconnectOptions!.maxQueued) throw new ServmanError("unavailable", "reconnecting, and the send queue is full");
      this.queued.push(JSON.stringify(frame));
      return;
    }
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) throw new ServmanError("unavailable", "not connected");
    ws.send(JSON.stringify(frame));
  }

  /**
   * Sends one message and settles on the gateway's answer: resolves once the gateway has published
   * it to the instance's node (`sent`), rejects with the gateway's error for it (`not_joined`,
   * `rate_limited`, `unavailable`, ...) or `timeout`. It costs what a request costs (an id, a
   * reply frame, a timer), so `send` stays the fire-and-forget path. Not queued while reconnecting:
   * it rejects with `unavailable` then, like every request.
   */
  async sendChecked(instance: string, action: string, data?: unknown, channel?: string): Promise<void> {
    const frame: Record<string, unknown> = { type: "send", instance, action, ack: true };
    if (data !== undefined) frame.data = data;
    if (channel !== undefined) frame.channel = channel;
    await this.request(frame, this.timeout);
  }

  /** Leaves an instance. */
  async leave(instance: string): Promise<void> {
    await this.request({ type: "leave", instance }, this.timeout);
    this.joinedInstances.delete(instance);
    this.dropHandle(instance);
  }

  /** Stops an instance this client owns; resolves once its process has exited. */
  async stop(instance: string): Promise<void> {
    await this.request({ type: "stop", instance }, this.timeout + 30_000);
  }

  /** Round trip to the gateway, in ms. */
  async ping(): Promise<number> {
    const start = Date.now();
    await this.request({ type: "ping" }, this.timeout);
    return Date.now() - start;
  }

  /** Closes the connection (1000: the session ends) and resolves once it is closed. Idempotent. */
  async close(): Promise<void> {
    this.closing = true;
    clearTimeout(this.retryTimer);
    this.wake?.();
    const ws = this.ws;
    const closed = this.closedPromise;
    if (ws && ws.readyState <= OPEN) ws.close(CLOSE_NORMAL, "client closed");
    await closed;
  }
}
