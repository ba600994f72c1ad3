/**
 * One client connection: the client protocol's requests (docs/protocol.md#requests-and-replies), the instances it joined and
 * owns, and the events arriving for it on its session channel.
 */
import { nanoid } from "nanoid";
import type { Logger } from "pino";
import type { WebSocket } from "ws";
import { ServmanError, toServmanError } from "../src/errors.js";
import type { ToInstance } from "../src/protocol/bus-messages.js";
import { CLOSE_INTERNAL_ERROR, CLOSE_POLICY, CLOSE_SESSION_TAKEN } from "../src/protocol/close-codes.js";
import {
  frameRequestId,
  idOf,
  parseClientFrame,
  type ClientRequest,
  type LaunchRequest,
  type LeaveRequest,
  type RequestId,
  type ResumeRequest,
  type ServerFrame,
  type StopRequest,
} from "../src/protocol/client-messages.js";
import type { StoredSession } from "../src/registry/session-store.js";
import type { FanoutSeq, ReplayGate } from "./replay-gate.js";
import { resumeSession, type ResumingSession } from "./session-resume.js";
import { resyncSession } from "./session-resync.js";
import { LiveSeqs } from "./live-seqs.js";
import { SendSeqs } from "./send-seqs.js";
import { SessionTail } from "./session-tail.js";
import { SessionMembership } from "./session-membership.js";
import { SessionAccess } from "./session-access.js";
import { SessionJoins } from "./session-joins.js";
import type { SessionContext } from "./session-context.js";
import { launchOwned, stopOwnedBy, type OwnerRequester } from "./owner-requests.js";
import { OPEN_IDENTITY, type Identity } from "./gateway-auth.js";
import { FrameRate } from "./frame-rate.js";
import { handleSessionEvent, keepInTail, type SessionEventTarget } from "./session-events.js";
import { publish } from "../src/pubsub.js";
import { scanSendFrame } from "../src/protocol/send-frame.js";
import { SessionSends } from "./session-sends.js";
import { frameOf } from "./shared-frame.js";

/** ws.send's options for a frame that may be given as bytes (shared-frame.ts): still a text frame. */
const TEXT_FRAME = { binary: false };

/** How soon a resync waits again for a resume (or resync) under way to finish. */
const RESYNC_RETRY_MS = 250;

export class ClientSession {
  private sessionId = nanoid(21);
  private token = nanoid(32);
  private sessionChannel: string;
  /** Requests handled so far: `resume` must be the first. */
  private requests = 0;
  /** While a resume is in progress: frames that arrived meanwhile, handled once it is over. */
  private waiting: [Buffer | ArrayBuffer | Buffer[], boolean][] | null = null;
  private gate: ReplayGate | undefined;
  /** What went to the client live, per instance (see onFanout). */
  private readonly live = new LiveSeqs();
  /** While detaching: events that arrived after the client left, for whoever resumes it. */
  private tail: SessionTail | null = null;
  private readonly joins: SessionJoins;
  private readonly sends: SessionSends;
  private readonly membership: SessionMembership;
  private readonly access: SessionAccess;
  private readonly joined: Set<string>;
  private closed = false;
  private readonly rate: FrameRate;
  private readonly events: SessionEventTarget;
  /** Numbered sends taken and handled (send-seqs.ts). */
  private readonly sendSeqs = new SendSeqs((frame) => this.send(frame));

  constructor(
    private readonly ws: WebSocket,
    private readonly ctx: SessionContext,
    private readonly logger: Logger,
    readonly identity: Identity = OPEN_IDENTITY,
  ) {
    this.sessionChannel = ctx.keys.sessionChannel(this.sessionId);
    this.rate = new FrameRate(ctx.limits);
    this.membership = new SessionMembership(ctx, this, logger);
    this.joined = this.membership.joined;
    this.access = new SessionAccess(identity, () => this.sessionId);
    this.joins = new SessionJoins({
      ctx,
      membership: this.membership,
      access: this.access,
      user: identity.user,
      id: () => this.sessionId,
      channel: () => this.sessionChannel,
      send: (frame) => this.send(frame),
      fail: (err, id) => this.fail(err, id),
      relay: (instance, payload, id, ack, seq) => this.sends.relay(instance, payload, id, ack, seq),
      settled: (seq) => this.settled(seq),
    });
    this.sends = new SessionSends({
      ctx,
      joins: this.joins,
      joined: this.joined,
      seqs: this.sendSeqs,
      id: () => this.sessionId,
      send: (frame) => this.send(frame),
      fail: (err, id) => this.fail(err, id),
      settled: (seq) => this.settled(seq),
    });
    this.events = {
      joins: this.joins,
      membership: this.membership,
      send: (frame) => this.send(frame),
      sendRaw: (text) => this.sendRaw(text),
      taken: () => this.ws.close(CLOSE_SESSION_TAKEN, "session resumed on another connection"),
      bad: (problem) => {
        this.ctx.metrics.badBusMessages.inc();
        this.logger.warn({ problem }, "bad message on a session channel dropped");
      },
    };
  }

  get id(): string {
    return this.sessionId;
  }

  get channel(): string {
    return this.sessionChannel;
  }

  get resumeToken(): string {
    return this.token;
  }

  /** The session as the store should hold it (for a rewrite after Redis lost its data), or null. */
  snapshot(): StoredSession | null {
    return this.closed ? null : this.membership.snapshot();
  }

  /** The ticket's user id; null in open mode. */
  get user(): string | null {
    return this.identity.user;
  }

  get admin(): boolean {
    return this.identity.admin;
  }

  /** Sends the welcome; call once the session channel is subscribed. */
  welcome(): void {
    this.send({ type: "welcome", session: this.id, resume: this.resumeToken, gateway: this.ctx.gatewayId, features: ["send-seq"] });
  }

  private send(frame: ServerFrame): void {
    this.sendRaw(JSON.stringify(frame));
  }

  /** Sends JSON text; a client that stopped reading is disconnected instead of buffered forever. */
  sendRaw(text: string): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(frameOf(text), TEXT_FRAME);
    this.ctx.metrics.hot.eventsOut++;
    if (this.ws.bufferedAmount > this.ctx.limits.maxBufferedBytes) {
      this.ctx.metrics.slowConsumers.inc();
      this.logger.warn({ buffered: this.ws.bufferedAmount }, "slow consumer disconnected");
      // A close frame would queue behind the very output it does not read: cut the socket instead.
      this.ws.terminate();
    }
  }

  private fail(err: unknown, id: RequestId | undefined): void {
    const e = toServmanError(err);
    if (e.code === "internal") this.logger.error({ err }, "internal error handling a request");
    this.ctx.metrics.errors.inc({ code: e.code });
    this.send(e.toFrame(id));
  }

  private publish(instance: string, message: ToInstance): Promise<number> {
    return publish(this.ctx.redis, this.ctx.keys.instanceChannel(instance), JSON.stringify(message));
  }

  /**
   * Handles one frame from the client. Never throws: whatever a frame makes a handler throw is
   * logged, counted and answered `internal`, and the connection goes on.
   */
  onFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    try {
      this.handleFrame(data, isBinary);
    } catch (err) {
      this.ctx.metrics.internalErrors.inc({ where: "frame" });
      this.fail(err, isBinary ? undefined : frameRequestId(this.decode(data)));
    }
  }

  private handleFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    if (this.waiting) {
      this.waiting.push([data, isBinary]);
      return;
    }
    // Limited before validation: a flood costs the gateway as little as possible.
    const verdict = this.rate.take();
    if (verdict.kind !== "pass") return this.refuse(data, isBinary, verdict.kind === "close", verdict.kind === "refuse" && verdict.first);
    if (isBinary) {
      this.fail(new ServmanError("bad_request", "binary frames are not supported; send JSON text"), undefined);
      return;
    }
    const text = this.decode(data);
    // The commonest frame first, read without being parsed (src/protocol/send-frame.ts); any other goes the slow way.
    const send = scanSendFrame(text, this.ctx.limits.maxDepth);
    if (send !== null) {
      this.ctx.metrics.hot.request("send");
      this.requests++;
      return this.sends.scanned(send);
    }
    const parsed = parseClientFrame(text, this.ctx.limits.maxDepth);
    if (!parsed.ok) {
      this.ctx.metrics.errors.inc({ code: parsed.code });
      this.send({ type: "error", ...idOf(parsed.id), code: parsed.code, message: parsed.message });
      return;
    }
    this.ctx.metrics.hot.request(parsed.request.type);
    this.requests++;
    this.dispatch(parsed.request);
  }

  /** A frame over the rate is dropped and answered (see below); a sustained flood closes the connection. */
  private refuse(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean, flood: boolean, first: boolean): void {
    this.ctx.metrics.limited.inc({ limit: "rate" });
    if (flood) {
      this.logger.warn("closing a connection that kept flooding past its rate limit");
      this.ws.close(CLOSE_POLICY, "rate limit exceeded");
      return;
    }
    // A request waits for its reply: it gets rate_limited with its id (at most `burst` parses per
    // flood, then the connection closes); frames without an id hear it once per run.
    const id = isBinary ? undefined : frameRequestId(this.decode(data));
    if (id !== undefined || first) {
      const { messagesPerSecond, burst } = this.ctx.limits;
      this.fail(new ServmanError("rate_limited", `over ${messagesPerSecond} messages per second (burst ${burst}); frames are dropped until the rate falls`), id);
    }
  }

  private decode(data: Buffer | ArrayBuffer | Buffer[]): string {
    if (Buffer.isBuffer(data)) return data.toString("utf8");
    return Array.isArray(data) ? Buffer.concat(data).toString("utf8") : Buffer.from(data).toString("utf8");
  }

  private dispatch(req: ClientRequest): void {
    switch (req.type) {
      case "send":
        return this.sends.request(req);
      case "join":
        return this.joins.join(req);
      case "leave":
        return this.onLeave(req);
      case "launch":
        return void this.onLaunch(req).catch((err) => this.fail(err, req.id));
      case "stop":
        return void this.onStop(req).catch((err) => this.fail(err, req.id));
      case "ping":
        return this.send(req.id === undefined ? { type: "pong" } : { type: "pong", id: req.id });
      case "resume":
        return this.onResume(req);
    }
  }

  /** A numbered send was relayed or refused: the client hears it in its next `accepted`. */
  private settled(seq: number | undefined): void {
    if (seq !== undefined) this.sendSeqs.settle(seq);
  }

  private onLeave(req: LeaveRequest): void {
    const instance = req.instance;
    const pending = this.joins.settle(instance, new ServmanError("not_joined", `left ${instance} before the join completed`));
    if (!this.membership.forgetJoined(instance) && !pending) {
      return this.fail(new ServmanError("not_joined", `not joined to ${instance}`), req.id);
    }
    void this.publish(instance, { type: "leave", client: this.id, reason: "left" }).catch((err: unknown) => this.logger.warn({ err, instance }, "could not tell an instance a session left"));
    this.send({ type: "left", ...idOf(req.id), instance });
    if (this.membership.closeOnLeave.has(instance)) this.membership.stopCloseOnLeave(instance);
  }

  private owner(): OwnerRequester {
    return { ctx: this.ctx, session: this.id, user: this.user, access: this.access, membership: this.membership, joins: this.joins, logger: this.logger, closed: () => this.closed };
  }

  private async onLaunch(req: LaunchRequest): Promise<void> {
    const result = await launchOwned(this.owner(), req);
    if (result) this.send({ type: "launched", ...idOf(req.id), ...result });
  }

  private async onStop(req: StopRequest): Promise<void> {
    await stopOwnedBy(this.owner(), req.instance);
    this.send({ type: "stopped", ...idOf(req.id), instance: req.instance });
  }

  /**
   * True when an event sent to many sessions at once (gateway-fanout.ts) can be taken now: not once
   * its connection is gone (its node keeps the event). While a resume waits for the instance's
   * replay, the gate holds it behind the replay: on a cluster the replay (session channel) and the
   * fanouts after it (gateway channel) come through different shards, so a fanout may come first,
   * and one named back `undelivered` then would leave the client away until a resume that never
   * comes.
   */
  takesFanout(): boolean {
    return !this.closed && this.tail === null && this.ws.readyState === this.ws.OPEN;
  }

  /** Handles one event published on the session channel. */
  /**
   * Fanout `seq` of `instance`'s run `run` for this session (gateway-fanout.ts). What goes to the
   * client now, not held behind a replay, is remembered: a later replay counts older events.
   */
  onFanout(instance: string, run: string | undefined, seq: number, payload: string): void {
    const held = this.gate !== undefined && !this.gate.done && this.gate.awaits(instance);
    if (run !== undefined && !held && this.tail === null && seq <= this.live.newest(instance, run)) {
      // Older than what a replay already gave the client (a cluster's retried publish, late): it
      // can no longer go out in order.
      return this.handleBus(JSON.stringify({ type: "dropped", instance, count: 1 }));
    }
    this.onBus(payload, run === undefined ? undefined : { run, seq });
    if (run === undefined || this.tail !== null) return;
    this.live.note(instance, run, seq, held);
  }

  onBus(payload: string, fanout?: FanoutSeq): void {
    // First the gate, even while detaching: a resume cut short counts what it can no longer order.
    if (this.gate) {
      // Parsing every event lasts only until each instance has replayed.
      if (this.gate.done) this.gate = undefined;
      else if (this.gate.intercept(payload, fanout)) return;
    }
    if (this.tail) return this.keepInTail(payload);
    this.handleBus(payload);
  }

  private handleBus(payload: string): void {
    handleSessionEvent(this.events, payload);
  }

  /** The instance died with its node: the client is told (`closed`, `lost`) if it was joined. */
  onLost(instance: string): void {
    this.membership.forgetCloseOnLeave(instance);
    this.joins.settle(instance, new ServmanError("unknown_instance", `instance ${instance} was lost with its node`));
    if (this.membership.forgetJoined(instance)) this.send({ type: "closed", instance, reason: "lost" });
  }

  /**
   * The connection closed. A session ended by its client (or by policy), never stored, or with
   * resume turned off is over: its instances hear `leave` now. Any other is detached: it stays
   * joined, with its events kept, until it is resumed or its resume window passes. Idempotent.
   */
  onClose(end: boolean): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.closed = true;
    this.sendSeqs.close();
    this.gate?.abandon();
    // A join still in flight is abandoned either way: the client learns nothing of it.
    this.joins.abandon();
    if (end || !this.membership.isStored) return this.membership.end();
    this.tail = new SessionTail(this.logger);
    return Promise.resolve();
  }

  /** A detached session's channel is no longer subscribed: it waits in the store for a resume. */
  async detached(): Promise<void> {
    if (this.tail === null) return;
    const tail = this.tail;
    this.tail = null;
    const lost = this.gate?.lost();
    this.gate = undefined;
    await this.membership.detach(tail.entries(lost));
  }

  private keepInTail(payload: string): void {
    keepInTail(this.events, this.tail!, payload);
  }

  /** Takes an older session back (its joins, ownership and the events it missed); see session-resume.ts. */
  private onResume(req: ResumeRequest): void {
    if (this.requests > 1 || this.membership.isStored) {
      return this.fail(new ServmanError("bad_request", "resume must be the first frame on a new connection"), req.id);
    }
    if (this.ctx.resumeWindowMs === 0) return this.fail(new ServmanError("unavailable", "sessions cannot be resumed on this gateway (resumeWindowMs is 0)"), req.id);
    this.waiting = [];
    void resumeSession(this.resuming(), req)
      .catch((err) => this.fail(err, req.id))
      .finally(() => {
        const waiting = this.waiting ?? [];
        this.waiting = null;
        for (const [data, isBinary] of waiting) this.onFrame(data, isBinary);
      });
  }

  /**
   * A node kept this session's events (its fanout reached no subscriber: a failover): the joined
   * instances replay what their nodes kept, on this still-open connection (session-resync.ts). A resume or
   * resync still under way is let finish first: its gate must not be replaced.
   */
  resync(): void {
    if (this.closed || this.tail !== null || this.joined.size === 0) return;
    if (this.waiting !== null || (this.gate && !this.gate.done)) {
      setTimeout(() => this.resync(), RESYNC_RETRY_MS).unref();
      return;
    }
    void resyncSession(this.resuming()).catch((err: unknown) => this.logger.warn({ err }, "could not resume a session on its open connection"));
  }

  /** What session-resume.ts may use and change: the session's id, token, channel, and gate. */
  private resuming(): ResumingSession {
    const { ctx, membership, identity, user, logger } = this;
    return {
      ctx,
      membership,
      identity,
      user,
      logger,
      id: () => this.sessionId,
      channel: () => this.sessionChannel,
      become: (id, token) => {
        const old = this.sessionChannel;
        this.sessionId = id;
        this.token = token;
        this.sessionChannel = this.ctx.keys.sessionChannel(id);
        return old;
      },
      setGate: (gate) => {
        // A new gate comes only once the last one is done: what it held has gone to the client.
        this.live.released();
        this.gate = gate;
        if (this.closed) gate.abandon();
      },
      closed: () => this.closed,
      alive: () => !this.closed && this.ws.readyState === this.ws.OPEN,
      send: (frame) => this.send(frame),
      deliver: (payload) => this.handleBus(payload),
      liveSeq: (instance, run) => this.live.newest(instance, run),
      resumedAt: (acked) => this.sendSeqs.resumedAt(acked),
      replayedThrough: (instance, run, seq) => this.live.note(instance, run, seq, false),
      notMember: (instance) => this.onLost(instance),
      abort: () => this.ws.close(CLOSE_INTERNAL_ERROR, "resume failed; resume again"),
    };
  }
}
