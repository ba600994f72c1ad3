/** The client SDK's options, events and the WebSocket API it needs (servman-client.ts uses them). */
import type { ClosedReason, LaunchOptions } from "../protocol/client-messages.js";
import type { ServmanError } from "../errors.js";

/** The WebSocket API the client needs (the browser's, Node 22's, or the `ws` package's). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  // The browser's and ws's event types differ; the SDK reads only the fields both have.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  addEventListener(type: "open" | "close" | "error" | "message", listener: (event: any) => void): void;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface ServmanClientOptions {
  /** WebSocket implementation. Default: `globalThis.WebSocket`, else the `ws` package. */
  WebSocket?: WebSocketConstructor;
  /** How long a request other than launch waits for its reply. Default 30 000 ms. */
  requestTimeoutMs?: number;
  /** Resuming the session after a dropped connection; `false` turns it off. */
  reconnect?: ReconnectOptions | false;
  /**
   * How long a launch waits for its reply beyond its `timeoutMs` (the wait for capacity): the
   * tries of the task (`attempts`), each up to its `readyTimeoutMs`. Default 90 000 ms.
   */
  launchGraceMs?: number;
  /**
   * Take back a session saved elsewhere (a page reload: `client.resumeState()` kept in
   * sessionStorage) instead of starting a new one: `connect` resumes it, and if it cannot be
   * resumed (its window passed, a wrong token), emits `reset` and goes on with a new session.
   */
  resume?: ResumeState;
}

/**
 * What an app saves to resume its session on another connection of its own (a page reload):
 * `client.resumeState()`, given back as the `resume` option (docs/resume.md#a-page-reload).
 */
export interface ResumeState {
  /** `client.session`. */
  session: string;
  /** `client.resumeToken`. */
  token: string;
  /** `client.eventSeq`: the last event number the app received, sent in `resume`. Default 0. */
  seq?: number;
  /** `client.sendSeq`: the number of the app's last send. Default 0. */
  sendSeq?: number;
}

/** How the client gets its session back when its connection drops (`resume`: docs/resume.md, docs/protocol.md#resume). */
export interface ReconnectOptions {
  /** First retry delay; it doubles per attempt up to `maxDelayMs`, with full jitter. Default 100 ms. */
  initialDelayMs?: number;
  /** Default 5 000 ms. */
  maxDelayMs?: number;
  /** Stop trying after this long; match the gateways' `resumeWindowMs`. Default 30 000 ms. */
  giveUpAfterMs?: number;
  /**
   * Sends the client keeps, up to this many: those made while reconnecting (sent, in order, once
   * the session is back; past the bound `send` throws `unavailable`), and those sent but not yet
   * known to have reached the cluster (sent again after a resume if they had not; past the bound
   * the oldest is let go, and counted in `sendsLost` if a resume shows it was lost). Default 10 000.
   */
  maxQueued?: number;
}

export const RECONNECT_DEFAULTS = { initialDelayMs: 100, maxDelayMs: 5_000, giveUpAfterMs: 30_000, maxQueued: 10_000 } satisfies Required<ReconnectOptions>;

export interface LaunchParams {
  args?: Record<string, unknown>;
  /** Instance id; the gateway generates one when absent. */
  instance?: string;
  options?: LaunchOptions;
  /** How long to wait for capacity (sent as `options.timeoutMs`). Default 30 000 ms. */
  timeoutMs?: number;
  /**
   * Join the instance as part of the launch (one round trip instead of two): `true`, or
   * `{ data }` for the service's join callback. The result then says whether the service took it.
   */
  join?: true | { data?: unknown };
}

/** What `launch` resolves with; `joined` (and `reason` when false) only when it asked to join. */
export interface LaunchResult {
  instance: string;
  node: string;
  joined?: boolean;
  reason?: string;
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
  /** The connection dropped; attempt `attempt` to get the session back starts after `delayMs`. */
  reconnecting: [attempt: number, delayMs: number, code: number];
  /** The session is back on `gateway`, still joined to `instances`; what was missed follows. */
  resumed: [instances: string[], gateway: string];
  /** The session could not be resumed (it expired): this is a new session, joined to nothing. */
  reset: [error: ServmanError];
  /**
   * `count` sends may not have reached their instances: the session was reset with them unsent or
   * unconfirmed, or they were let go past `maxQueued` and the resume showed the cluster lacked them,
   * or (resuming a saved session) the saved page made them and the cluster lacked them.
   */
  sendsLost: [count: number];
  /** The connection closed for good (closed by `close()`, or reconnecting gave up or is off). */
  disconnect: [code: number, reason: string];
}

/** Arguments every client action handler receives. */
export type ClientActionArgs = [instance: string, data: unknown, channel: string | undefined];
