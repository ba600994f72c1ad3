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
import { defaultWebSocket } from "#websocket-impl";
import { ClientListeners } from "./client-listeners.js";
import { openConnection, type Welcome } from "./connection.js";
import { Outbox } from "./outbox.js";
import { PendingRequests } from "./pending-requests.js";
import { InstanceHandle, type InstanceActionHandler } from "./instance-handle.js";
import { InstanceHandles } from "./instance-handles.js";
import { ReconnectLoop, type ReconnectOutcome } from "./reconnect-loop.js";
import { CLOSE_NORMAL, CLOSE_POLICY, CLOSE_SESSION_TAKEN } from "../protocol/close-codes.js";
import type { ClosedReason, LaunchOptions } from "../protocol/client-messages.js";
import {
  RECONNECT_DEFAULTS,
  type ClientActionArgs,
  type ClientEvents,
  type LaunchParams,
  type LaunchResult,
  type ReconnectOptions,
  type ResumeState,
  type ServmanClientOptions,
  type WebSocketConstructor,
  type WebSocketLike,
} from "./client-options.js";

export { InstanceHandle };
export type { InstanceActionHandler };
export type { HandleOptions } from "../actions.js";
export type { ClientActionArgs, ClientEvents, LaunchParams, LaunchResult, ReconnectOptions, ResumeState, ServmanClientOptions, WebSocketConstructor, WebSocketLike };

const OPEN = 1;

/** The events that carry the session's event number (`seq`, docs/protocol.md#events). */
const NUMBERED_EVENTS = new Set(["message", "closed", "dropped", "restarting", "restarted", "moved", "alert"]);

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
  /** The number of the last event received (events carry one from gateways that number them); 0: none. */
  eventSeq = 0;
  private readonly options: ServmanClientOptions;
  private readonly reconnectOptions: Required<ReconnectOptions> | null;
  private ws: WebSocketLike | undefined;
  private readonly pending = new PendingRequests();
  private readonly listeners = new ClientListeners<ClientEvents>();
  /** Instances this client is joined to (what a failed resume reports as lost). */
  private readonly joinedInstances = new Set<string>();
  /** Sends kept until the cluster has them, and those made while reconnecting (outbox.ts). */
  private readonly outbox: Outbox;
  /** The session numbers its sends (its gateway takes numbered sends). */
  private numbered = false;
  /** Between a drop and the session being back (or the first connection resuming a saved session). */
  private reconnecting = false;
  /** The saved session the first connection resumes, until it is resumed (or reset). */
  private saved: ResumeState | undefined;
  private closing = false;
  private closedPromise: Promise<void> | undefined;
  private closedResolve: (() => void) | undefined;
  private readonly loop: ReconnectLoop;
  private readonly handles = new InstanceHandles({
    send: (instance, action, data, channel) => this.send(instance, action, data, channel),
    sendChecked: (instance, action, data, channel) => this.sendChecked(instance, action, data, channel),
    join: (instance, data) => this.join(instance, data),
    leave: (instance) => this.leave(instance),
    stop: (instance) => this.stop(instance),
  });

  /** `url`: one gateway URL, or several (tried in turn when reconnecting). */
  constructor(url: string | readonly string[], options: ServmanClientOptions = {}) {
    super();
    this.urls = typeof url === "string" ? [url] : [...url];
    if (this.urls.length === 0) throw new ServmanError("bad_request", "at least one gateway URL is needed");
    this.url = this.urls[0]!;
    this.options = options;
    this.reconnectOptions = options.reconnect === false ? null : { ...RECONNECT_DEFAULTS, ...(options.reconnect ?? {}) };
    this.outbox = new Outbox(this.reconnectOptions?.maxQueued ?? RECONNECT_DEFAULTS.maxQueued);
    this.loop = new ReconnectLoop(this.urls, this.reconnectOptions ?? RECONNECT_DEFAULTS);
    this.saved = options.resume;
  }

  /** The number of this session's last send (0: none, or the gateway does not number sends). */
  get sendSeq(): number {
    return this.outbox.seq;
  }

  /**
   * What to save to resume this session elsewhere (a page reload): give it back as the `resume`
   * option (docs/resume.md#a-page-reload). Save it again after sends and events: its numbers move.
   */
  resumeState(): ResumeState {
    return { session: this.session, token: this.resumeToken, seq: this.eventSeq, sendSeq: this.outbox.seq };
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
    return this.handles.get(id);
  }

  private emit<E extends keyof ClientEvents>(event: E, ...args: ClientEvents[E]): void {
    this.listeners.emit(event, ...args);
  }

  /**
   * Opens the connection (to the first URL that answers) and resolves with the welcome. With the
   * `resume` option, takes that session back instead (`resumed` is then true; if it could not be
   * resumed, `reset` was emitted and this is a new session).
   */
  async connect(): Promise<{ session: string; gateway: string; resumed: boolean }> {
    if (this.ws || this.closedPromise) throw new ServmanError("bad_request", "already connected");
    this.closedPromise = new Promise((resolve) => (this.closedResolve = resolve));
    if (this.saved) return this.connectSaved(this.saved);
    let last: unknown;
    for (let i = 0; i < this.urls.length; i++) {
      try {
        this.loop.index = i;
        this.adopt(await this.open(this.urls[i]));
        return { session: this.session, gateway: this.gateway, resumed: false };
      } catch (err) {
        last = err;
      }
    }
    this.closedPromise = undefined;
    throw last;
  }

  /** The first connection takes a saved session back (or starts a new one if it is gone). */
  private async connectSaved(saved: ResumeState): Promise<{ session: string; gateway: string; resumed: boolean }> {
    this.session = saved.session;
    this.resumeToken = saved.token;
    this.eventSeq = saved.seq ?? 0;
    this.reconnecting = true;
    const outcome = await this.takeBack(undefined);
    if (outcome.kind === "gave-up") {
      this.reconnecting = false;
      // A close() meanwhile waits for this.
      this.closedResolve?.();
      this.closedResolve = undefined;
      this.closedPromise = undefined;
      throw new ServmanError("unavailable", `could not resume session ${saved.session}: no gateway took it back within ${(this.reconnectOptions ?? RECONNECT_DEFAULTS).giveUpAfterMs} ms`);
    }
    return { session: this.session, gateway: this.gateway, resumed: outcome.kind === "resumed" };
  }

  /** A new session: its id, token and gateway, and whether it numbers its sends. */
  private adopt(welcome: Welcome): void {
    this.session = welcome.session;
    this.resumeToken = welcome.resume;
    this.gateway = welcome.gateway;
    this.eventSeq = 0;
    this.numbered = welcome.features.includes("send-seq");
  }

  /** One WebSocket: resolves with its welcome; its end triggers a reconnect or the disconnect. */
  private async open(url: string): Promise<Welcome> {
    const Ctor = this.options.WebSocket ?? (await defaultWebSocket());
    return openConnection(Ctor, url, {
      welcomed: (ws) => (this.ws = ws),
      frame: (frame) => this.onFrame(frame),
      closed: (ws, code, reason) => {
        if (this.ws !== ws) return;
        this.ws = undefined;
        // Numbered checked sends wait for the resume, which tells whether they arrived.
        this.pending.rejectAll(new ServmanError("unavailable", `connection closed (${code}${reason ? ` ${reason}` : ""})`));
        // A reconnect in progress notices by itself (its resume request was just rejected).
        if (this.reconnecting) return;
        // Closed by us, by a policy (1008: ticket, rate), or because another connection took the
        // session (4000): resuming would not help, or would take it back and forth.
        if (this.closing || !this.reconnectOptions || code === CLOSE_POLICY || code === CLOSE_SESSION_TAKEN) return this.finish(code, reason);
        this.reconnecting = true;
        void this.takeBack(code).then((outcome) => outcome.kind === "gave-up" && this.finish(code, reason));
      },
    });
  }

  private finish(code: number, reason: string): void {
    const resolve = this.closedResolve;
    if (!resolve) return;
    this.closedResolve = undefined;
    this.reconnecting = false;
    this.pending.rejectAll(new ServmanError("unavailable", `disconnected (${code})`), true);
    this.emit("disconnect", code, reason);
    resolve();
    this.closedPromise = undefined;
  }

  /**
   * Gets the session back (reconnect-loop.ts), or goes on with a new one if it is gone. `code`: the
   * close that started it; undefined for the first connection of a saved session.
   */
  private async takeBack(code: number | undefined): Promise<ReconnectOutcome> {
    const outcome = await this.loop.run(
      {
        open: (url) => this.open(url),
        resume: () => this.request({ type: "resume", session: this.session, resume: this.resumeToken, ...(this.eventSeq > 0 ? { seq: this.eventSeq } : {}) }, this.timeout, true),
        lost: () => !this.ws,
        drop: () => {
          this.ws?.close(CLOSE_NORMAL, "retrying");
          this.ws = undefined;
        },
        closing: () => this.closing,
        reconnecting: (attempt, delayMs, closeCode) => this.emit("reconnecting", attempt, delayMs, closeCode),
      },
      code,
    );
    if (outcome.kind === "resumed") this.resumedOn(outcome.welcome, outcome.reply);
    else if (outcome.kind === "reset") this.resetTo(outcome.welcome, outcome.err);
    return outcome;
  }

  /** The session is back: kept sends the cluster lacks go again, in order, then the app hears it. */
  private resumedOn(welcome: Welcome, reply: Record<string, unknown>): void {
    this.gateway = welcome.gateway;
    this.numbered ||= welcome.features.includes("send-seq");
    const instances = Array.isArray(reply.instances) ? reply.instances.map(String) : [];
    this.joinedInstances.clear();
    for (const instance of instances) this.joinedInstances.add(instance);
    const acked = typeof reply.acked === "number" ? reply.acked : undefined;
    const out = this.outbox.resumed(acked);
    // A saved session: what its page sent after `acked` went with that page.
    const lost = out.lost + (this.saved ? this.outbox.adopted(this.saved.sendSeq ?? 0, acked ?? 0) : 0);
    this.saved = undefined;
    this.reconnecting = false;
    for (const id of out.accepted) this.pending.settleId(id, { type: "sent", id });
    for (const id of out.failed) this.pending.settleId(id, new ServmanError("unavailable", "message not delivered: the connection closed"));
    for (const text of out.write) this.ws?.send(text);
    this.emit("resumed", instances, this.gateway);
    if (lost > 0) this.emit("sendsLost", lost);
  }

  /** The session is gone for good: this connection goes on as a new, empty one. */
  private resetTo(welcome: Welcome, err: ServmanError): void {
    this.adopt(welcome);
    this.saved = undefined;
    // Kept sends were for instances this new session has not joined.
    const out = this.outbox.reset();
    this.reconnecting = false;
    for (const id of out.failed) this.pending.settleId(id, new ServmanError("unavailable", "message not delivered: the session was lost"));
    const lost = [...this.joinedInstances];
    this.joinedInstances.clear();
    this.emit("reset", err);
    for (const instance of lost) {
      this.handles.drop(instance);
      this.emit("closed", instance, "lost");
    }
    if (out.lost > 0) this.emit("sendsLost", out.lost);
  }

  /** Handles one frame other than the welcome. Subclasses may extend it. */
  protected onFrame(frame: Record<string, unknown>): void {
    if (this.pending.settle(frame)) return;
    if (typeof frame.seq === "number" && frame.seq > this.eventSeq && NUMBERED_EVENTS.has(frame.type as string)) this.eventSeq = frame.seq;
    switch (frame.type) {
      case "message": {
        const instance = String(frame.instance);
        const action = String(frame.action);
        const channel = typeof frame.channel === "string" ? frame.channel : undefined;
        const onError = (err: unknown) => this.emit("error", new ServmanError("internal", `action handler failed: ${String(err)}`, { cause: err }));
        // The instance's own handler first, then the client-wide one, then `message` listeners.
        const own = this.handles.dispatch(instance, action, frame.data, channel, onError);
        const handled = this.dispatchAction(action, [instance, frame.data, channel], onError);
        this.emit("message", instance, action, frame.data, channel);
        if (!own && !handled && this.listeners.count("message") === 0) this.onUnknownAction(instance, action, frame.data, channel);
        break;
      }
      case "accepted":
        this.outbox.acceptedThrough(Number(frame.seq));
        break;
      case "closed":
        this.outbox.skip(String(frame.instance));
        this.joinedInstances.delete(String(frame.instance));
        this.handles.drop(String(frame.instance));
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
    if (!ws || ws.readyState !== OPEN || (this.reconnecting && !resuming)) {
      return Promise.reject(new ServmanError("unavailable", this.reconnecting ? "reconnecting; try again once resumed" : "not connected"));
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
   * `sendChecked` to hear the error of one message. Numbered and kept until the cluster has it
   * (sent again after a resume if the connection it went into was dead), or queued while
   * reconnecting (docs/resume.md#what-a-client-sends).
   */
  send(instance: string, action: string, data?: unknown, channel?: string): void {
    const frame: Record<string, unknown> = { type: "send", instance, action };
    if (data !== undefined) frame.data = data;
    if (channel !== undefined) frame.channel = channel;
    const ws = this.ws;
    if (!this.reconnecting && (!ws || ws.readyState !== OPEN)) throw new ServmanError("unavailable", "not connected");
    const text = this.outbox.add(instance, frame, this.numbered, !this.reconnecting);
    if (text !== null) ws!.send(text);
  }

  /**
   * Sends one message and settles on the gateway's answer: resolves once the gateway has published
   * it to the instance's node (`sent`), rejects with the gateway's error for it (`not_joined`,
   * `rate_limited`, `unavailable`, ...) or `timeout`. It costs what a request costs (an id, a
   * reply frame, a timer), so `send` stays the fire-and-forget path. Not queued while reconnecting:
   * it rejects with `unavailable` then, like every request. One made before a drop is numbered and
   * kept like a `send`: the resume settles it (sent again if the cluster lacked it).
   */
  async sendChecked(instance: string, action: string, data?: unknown, channel?: string): Promise<void> {
    const frame: Record<string, unknown> = { type: "send", instance, action, ack: true };
    if (data !== undefined) frame.data = data;
    if (channel !== undefined) frame.channel = channel;
    const ws = this.ws;
    if (!this.numbered || this.reconnecting || !ws || ws.readyState !== OPEN) return void (await this.request(frame, this.timeout));
    const { id, reply } = this.pending.expect("send", this.timeout, true);
    ws.send(this.outbox.add(instance, { ...frame, id }, true, true, id)!);
    await reply;
  }

  /** Leaves an instance. */
  async leave(instance: string): Promise<void> {
    await this.request({ type: "leave", instance }, this.timeout);
    // Its sends before the leave were handled before it: none is sent again after a resume.
    this.outbox.skip(instance);
    this.joinedInstances.delete(instance);
    this.handles.drop(instance);
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
    this.loop.stop();
    const ws = this.ws;
    const closed = this.closedPromise;
    if (ws && ws.readyState <= OPEN) ws.close(CLOSE_NORMAL, "client closed");
    await closed;
  }
}
