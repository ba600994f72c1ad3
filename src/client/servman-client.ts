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
 */
import { ActionDispatcher } from "../actions.js";
import { ServmanError, isErrorCode } from "../errors.js";
import type { ClosedReason, LaunchOptions, RequestId } from "../protocol/client-messages.js";

/** The WebSocket API the client needs (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "close" | "error" | "message", listener: (event: any) => void): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ServmanClientOptions {
  /** WebSocket implementation. Default: `globalThis.WebSocket`, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** How long a request other than launch waits for its reply. Default 30 000 ms. */
  requestTimeoutMs?: number;
}

export interface LaunchParams {
  args?: Record<string, unknown>;
  /** Instance id; the gateway generates one when absent. */
  instance?: string;
  options?: LaunchOptions;
  /** How long to wait for capacity (sent as `options.timeoutMs`). Default 30 000 ms. */
  timeoutMs?: number;
}

/** Events a client emits, with their arguments. */
export interface ClientEvents {
  /** Every service message (after any action handler ran). */
  message: [instance: string, action: string, data: unknown, channel: string | undefined];
  /** No longer joined to an instance. */
  closed: [instance: string, reason: ClosedReason];
  /** `count` messages for this client could not be kept. */
  dropped: [instance: string, count: number];
  /** The instance's process ended and is being started again (supervisor mode); still joined. */
  restarting: [instance: string, reason: "exited" | "crashed", attempt: number, delayMs: number];
  /** The instance is back; messages sent meanwhile were delivered to the new process. */
  restarted: [instance: string, attempt: number];
  /** Someone who is not the owner tried to stop an instance this client owns. */
  alert: [event: { instance: string; kind: string; session: string; user: string | null }];
  /** An error frame not tied to a request. */
  error: [error: ServmanError];
  /** The connection closed. */
  disconnect: [code: number, reason: string];
}

/** Arguments every client action handler receives. */
export type ClientActionArgs = [instance: string, data: unknown, channel: string | undefined];

interface Pending {
  resolve(frame: Record<string, unknown>): void;
  reject(err: ServmanError): void;
  timer: ReturnType<typeof setTimeout>;
}

const OPEN = 1;

async function defaultWebSocket(): Promise<WebSocketConstructor> {
  const native = (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (native) return native;
  const ws = await import("ws");
  return ws.WebSocket as unknown as WebSocketConstructor;
}

export class ServmanClient extends ActionDispatcher<ClientActionArgs> {
  readonly url: string;
  /** Session id, set by `connect`. */
  session = "";
  /** Resume token, set by `connect`. */
  resumeToken = "";
  /** Id of the gateway serving this connection. */
  gateway = "";
  private readonly options: ServmanClientOptions;
  private ws: WebSocketLike | undefined;
  private nextId = 1;
  private readonly pending = new Map<RequestId, Pending>();
  private readonly listeners = new Map<keyof ClientEvents, Set<(...args: any[]) => void>>();
  private closedPromise: Promise<void> | undefined;

  constructor(url: string, options: ServmanClientOptions = {}) {
    super();
    this.url = url;
    this.options = options;
  }

  /** Adds a listener. Returns a function that removes it. */
  on<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener as (...args: any[]) => void);
    return () => set!.delete(listener as (...args: any[]) => void);
  }

  private emit<E extends keyof ClientEvents>(event: E, ...args: ClientEvents[E]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }

  /** Opens the connection and resolves with the welcome once the gateway greets us. */
  async connect(): Promise<{ session: string; gateway: string }> {
    if (this.ws) throw new ServmanError("bad_request", "already connected");
    const Ctor = this.options.WebSocket ?? (await defaultWebSocket());
    const ws = new Ctor(this.url);
    this.ws = ws;
    let closed!: () => void;
    this.closedPromise = new Promise((resolve) => (closed = resolve));
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
          this.session = String(frame.session);
          this.resumeToken = String(frame.resume);
          this.gateway = String(frame.gateway);
          resolve({ session: this.session, gateway: this.gateway });
          return;
        }
        this.onFrame(frame);
      });
      ws.addEventListener("error", () => {
        if (!welcomed) reject(new ServmanError("unavailable", `could not connect to ${this.url}`));
      });
      ws.addEventListener("close", (event: { code: number; reason: string }) => {
        if (!welcomed) reject(new ServmanError("unavailable", `connection to ${this.url} closed (${event.code})`));
        const err = new ServmanError("unavailable", `connection closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
        for (const [id, p] of this.pending) {
          clearTimeout(p.timer);
          this.pending.delete(id);
          p.reject(err);
        }
        this.emit("disconnect", event.code, event.reason);
        closed();
      });
    });
  }

  /** Handles one frame other than the welcome. Subclasses may extend it. */
  protected onFrame(frame: Record<string, unknown>): void {
    const id = frame.id as RequestId | undefined;
    if (id !== undefined && this.pending.has(id)) {
      const p = this.pending.get(id)!;
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (frame.type === "error") {
        const code = isErrorCode(frame.code) ? frame.code : "internal";
        p.reject(new ServmanError(code, String(frame.message ?? code)));
      } else {
        p.resolve(frame);
      }
      return;
    }
    switch (frame.type) {
      case "message": {
        const instance = String(frame.instance);
        const action = String(frame.action);
        const channel = typeof frame.channel === "string" ? frame.channel : undefined;
        const handled = this.dispatchAction(action, [instance, frame.data, channel], (err) => this.emit("error", new ServmanError("internal", `action handler failed: ${String(err)}`, { cause: err })));
        this.emit("message", instance, action, frame.data, channel);
        if (!handled && (this.listeners.get("message")?.size ?? 0) === 0) this.onUnknownAction(instance, action, frame.data, channel);
        break;
      }
      case "closed":
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
        this.emit("error", new ServmanError(code, String(frame.message ?? code)));
        break;
      }
    }
  }

  /** A message whose action has no handler and no `message` listener. Default: ignored. */
  protected onUnknownAction(_instance: string, _action: string, _data: unknown, _channel: string | undefined): void {}

  private request(frame: Record<string, unknown>, timeoutMs: number): Promise<Record<string, unknown>> {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) return Promise.reject(new ServmanError("unavailable", "not connected"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ServmanError("timeout", `no reply to ${String(frame.type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  private get timeout(): number {
    return this.options.requestTimeoutMs ?? 30_000;
  }

  /** Launches an instance of `task`; resolves once it is ready. This client becomes its owner. */
  async launch(task: string, params: LaunchParams = {}): Promise<{ instance: string; node: string }> {
    const options: LaunchOptions = { ...(params.options ?? {}) };
    if (params.timeoutMs !== undefined) options.timeoutMs = params.timeoutMs;
    const frame: Record<string, unknown> = { type: "launch", task, options };
    if (params.args !== undefined) frame.args = params.args;
    if (params.instance !== undefined) frame.instance = params.instance;
    // The gateway answers no_capacity at timeoutMs; a claimed launch may then still take readyTimeoutMs.
    const reply = await this.request(frame, (options.timeoutMs ?? 30_000) + 90_000);
    return { instance: String(reply.instance), node: String(reply.node) };
  }

  /** Joins an instance; rejects with `join_rejected` if its service refuses. */
  async join(instance: string, data?: unknown): Promise<void> {
    await this.request(data === undefined ? { type: "join", instance } : { type: "join", instance, data }, this.timeout);
  }

  /** Sends one message to an instance's service (no reply; errors arrive as `error` events). */
  send(instance: string, action: string, data?: unknown, channel?: string): void {
    const ws = this.ws;
    if (!ws || ws.readyState !== OPEN) throw new ServmanError("unavailable", "not connected");
    const frame: Record<string, unknown> = { type: "send", instance, action };
    if (data !== undefined) frame.data = data;
    if (channel !== undefined) frame.channel = channel;
    ws.send(JSON.stringify(frame));
  }

  /** Leaves an instance. */
  async leave(instance: string): Promise<void> {
    await this.request({ type: "leave", instance }, this.timeout);
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

  /** Closes the connection (1000) and resolves once it is closed. Idempotent. */
  async close(): Promise<void> {
    const ws = this.ws;
    if (!ws) return;
    if (ws.readyState <= OPEN) ws.close(1000, "client closed");
    await this.closedPromise;
  }
}
