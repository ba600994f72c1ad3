/**
 * A gateway: HTTP + WebSocket server that holds client sessions and relays them over Redis.
 * Stateless beyond its open connections: any gateway serves any client for any instance.
 */
import type { IncomingMessage, Server } from "node:http";
import type { Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import type { Duplex } from "node:stream";
import type { RedisClient } from "../src/redis-connection.js";
import { nanoid } from "nanoid";
import { pino, type Logger } from "pino";
import { WebSocketServer, type WebSocket } from "ws";
import type { ServmanConfig } from "../src/config/options.js";
import { ServmanError, toServmanError } from "../src/errors.js";
import type { Keys } from "../src/keys.js";
import type { Requester } from "../src/launch/requester.js";
import { NodeReaper } from "../src/launch/node-reaper.js";
import { decodeClusterEvent, decodeToRequester } from "../src/protocol/bus-parse.js";
import { CLOSE_GOING_AWAY, CLOSE_INTERNAL_ERROR, CLOSE_POLICY, ENDING_CLOSE_CODES } from "../src/protocol/close-codes.js";
import { guarded, type EdgeFault } from "../src/edge-guard.js";
import { connectCluster } from "../src/cluster-connection.js";
import { InstanceLogs } from "../src/registry/instance-logs.js";
import { SessionStore, type StoredSession } from "../src/registry/session-store.js";
import { RedisHealth } from "./redis-health.js";
import { RequestGuard } from "./request-guard.js";
import { FdGuard } from "./fd-guard.js";
import { GatewayAuth, type Identity } from "./gateway-auth.js";
import { HostCheck, upgradeRefusal } from "./host-check.js";
import type { HttpApiContext } from "./http-api.js";
import { createGatewayServer, listenOn } from "./http-server.js";
import { Keepalive } from "./keepalive.js";
import { GatewayMetrics } from "./metrics.js";
import { assertServable, readTlsFiles } from "./servable.js";
import { ClientSession } from "./session.js";
import type { SessionContext } from "./session-context.js";
import { SessionKeeper } from "./session-keeper.js";
import { SocketGuard } from "./socket-guard.js";
import { corkSendsPerTick } from "./tick-corked-sends.js";
import { fanoutHost, handleGatewayMessage, type FanoutHost } from "./gateway-fanout.js";
import { onMessage, subscribe, unsubscribe } from "../src/pubsub.js";

export interface GatewayOptions {
  config: ServmanConfig;
  /** Root logger; the gateway binds its id. Default: silent. */
  logger?: Logger;
  /** Include Node process metrics in /metrics. Default true. */
  processMetrics?: boolean;
}

/** Path of the client WebSocket endpoint. */
const CONNECT_PATH = "/v1/connect";

export class Gateway {
  readonly id = `gw-${nanoid(10)}`;
  readonly metrics: GatewayMetrics;
  private readonly config: ServmanConfig;
  private readonly logger: Logger;
  private readonly keys: Keys;
  private readonly redis: RedisClient;
  private readonly sub: RedisClient;
  private readonly requester: Requester;
  private readonly server: Server | HttpsServer;
  private readonly wss: WebSocketServer;
  private readonly sessions = new Map<string, ClientSession>();
  /** Every accepted socket, per client address and in total (maxConnectionsPerIp, open files). */
  private readonly sockets: SocketGuard;
  private readonly guard: RequestGuard;
  private readonly hostCheck: HostCheck;
  private readonly keepalive: Keepalive;
  private readonly replyChannel: string;
  /** This gateway's own channel: fanouts and barriers from nodes (gateway-fanout.ts). */
  private readonly gatewayChannels: ReadonlySet<string>;
  private readonly fanout: FanoutHost;
  private readonly ctx: SessionContext;
  private readonly auth: GatewayAuth;
  private readonly reaper: NodeReaper;
  private readonly logs: InstanceLogs;
  private readonly keeper: SessionKeeper;
  /** Sessions being detached (their channel unsubscribed, then the store written). */
  private readonly detaching = new Set<Promise<void>>();
  private readonly fdGuard: FdGuard;
  private readonly health: RedisHealth;
  private draining = false;
  private closing: Promise<void> | undefined;

  constructor(options: GatewayOptions) {
    this.config = options.config;
    // First, before any connection exists: an unreadable certificate must leave nothing open.
    const tlsFiles = this.config.gateway.tls ? readTlsFiles(this.config.gateway.tls, this.config.file) : undefined;
    this.logger = (options.logger ?? pino({ level: "silent" })).child({ gateway: this.id });
    this.fdGuard = new FdGuard(this.logger);
    this.metrics = new GatewayMetrics(options.processMetrics ?? true);
    ({
      keys: this.keys,
      redis: this.redis,
      sub: this.sub,
      replyChannel: this.replyChannel,
      requester: this.requester,
    } = connectCluster({
      redis: this.config.redis,
      prefix: this.config.prefix,
      names: { command: `gateway:${this.id}`, subscriber: `gateway-sub:${this.id}` },
      requesterId: this.id,
      logger: this.logger,
    }));
    this.health = new RedisHealth(this.redis, this.sub);
    this.gatewayChannels = new Set(this.keys.gatewayChannels(this.id));
    this.fanout = fanoutHost({
      redis: this.redis,
      keys: this.keys,
      gatewayId: this.id,
      sessions: this.sessions,
      logger: this.logger,
      bad: (problem) => this.badBus("to-gateway", problem),
      gap: () => this.metrics.fanoutGaps.inc(),
      resynced: () => this.metrics.resyncs.inc(),
    });
    this.auth = new GatewayAuth(this.config.auth, this.config.gateway.host);
    this.logs = new InstanceLogs(this.redis, this.keys);
    this.reaper = new NodeReaper({ redis: this.redis, keys: this.keys, requester: this.requester, tasks: this.config.tasks, logger: this.logger });
    const store = new SessionStore(this.redis, this.keys);
    const resumeWindowMs = this.config.gateway.resumeWindowMs;
    this.keeper = new SessionKeeper({
      gatewayId: this.id,
      redis: this.redis,
      keys: this.keys,
      store,
      requester: this.requester,
      resumeWindowMs,
      logger: this.logger,
      sessions: () => this.storedSessions(),
    });
    this.ctx = {
      gatewayId: this.id,
      redis: this.redis,
      keys: this.keys,
      requester: this.requester,
      limits: this.config.gateway.limits,
      metrics: this.metrics,
      store,
      resumeWindowMs,
      routeAs: this.config.gateway.fanout === "gateway" ? this.id : undefined,
      rebind: (oldChannel, newChannel) => this.rebind(oldChannel, newChannel),
      postMortem: (instance) => this.logs.postMortem(instance),
    };
    onMessage(
      this.sub,
      guarded("redis message", this.fault, (channel: string, payload: string) => this.onBus(channel, payload)),
    );
    this.wss = new WebSocketServer({ noServer: true, maxPayload: this.config.gateway.limits.maxFrameBytes, perMessageDeflate: false });
    const limits = this.config.gateway.limits;
    this.guard = new RequestGuard(this.logger, this.metrics);
    this.sockets = new SocketGuard({ maxPerIp: limits.maxConnectionsPerIp, fdGuard: this.fdGuard, metrics: this.metrics, logger: this.logger });
    this.hostCheck = new HostCheck(this.config.gateway, () => (this.server.address() as AddressInfo | null)?.address);
    this.keepalive = new Keepalive({ intervalMs: limits.pingIntervalMs, timeoutMs: limits.pongTimeoutMs, onTimeout: () => this.metrics.pingTimeouts.inc() });
    const http: HttpApiContext = {
      requester: this.requester,
      metrics: this.metrics,
      logger: this.logger,
      unhealthy: () => this.unhealthy(),
      authorizeAdmin: (req) => this.auth.authorizeAdmin(req),
      secret: this.config.auth.secret,
      postMortem: (id) => this.logs.postMortem(id),
      maxDepth: limits.maxDepth,
      refusedHost: (req) => this.hostCheck.hostRefusal(req.headers.host),
    };
    this.server = createGatewayServer({
      tlsFiles,
      limits,
      api: http,
      guard: this.guard,
      sockets: this.sockets,
      onUpgrade: (req, socket, head) => this.onUpgrade(req, socket, head),
    });
  }

  private *storedSessions(): Iterable<{ session: StoredSession; token: string }> {
    for (const s of this.sessions.values()) {
      const session = s.snapshot();
      if (session) yield { session, token: s.resumeToken };
    }
  }

  /** Why the gateway is not serving, or null when it is. */
  unhealthy(): string | null {
    if (this.draining) return "draining";
    return this.health.reachable ? null : "redis unreachable";
  }

  /** Binds the configured host and port (0 picks a free port) and subscribes its reply channel. */
  async listen(): Promise<AddressInfo> {
    const { host, port } = this.config.gateway;
    assertServable(this.config);
    await subscribe(this.sub, this.replyChannel, ...this.gatewayChannels, this.keys.events());
    this.reaper.start();
    await this.keeper.start();
    this.health.start();
    const address = await listenOn(this.server, port, host);
    this.logger.info({ host: address.address, port: address.port }, "gateway listening");
    if (this.auth.adminOff !== null) this.logger.warn(this.auth.adminOff);
    return address;
  }

  /** The client URL, e.g. `ws://127.0.0.1:8080/v1/connect`. */
  get url(): string {
    const address = this.server.address() as AddressInfo | null;
    if (!address) throw new ServmanError("unavailable", "gateway is not listening");
    const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
    return `${this.config.gateway.tls ? "wss" : "ws"}://${host}:${address.port}${CONNECT_PATH}`;
  }

  /**
   * Reads the certificate and key again and serves them to new connections; open connections
   * keep theirs. For certificate renewal without a restart (`servman` calls it on SIGHUP).
   * A file that cannot be read leaves the current certificate in place and rejects.
   */
  reloadTls(): void {
    const tls = this.config.gateway.tls;
    if (!tls) throw new ServmanError("bad_request", "this gateway has no TLS configured");
    (this.server as HttpsServer).setSecureContext(readTlsFiles(tls, this.config.file));
    this.logger.info("TLS certificate reloaded");
  }

  /** Open client connections. */
  get connections(): number {
    return this.sessions.size;
  }

  /** An exception that escaped a handler at an entry point: logged with its stack and counted. */
  private readonly fault: EdgeFault = (err, where) => {
    this.metrics.internalErrors.inc({ where });
    this.logger.error({ err, where }, "exception at an entry point; the gateway goes on");
  };

  /** A message on one of the gateway's own channels without the shape of one: counted and logged, then dropped. */
  private badBus(channel: string, problem: string): void {
    this.metrics.badBusMessages.inc();
    this.logger.warn({ channel, problem }, "bad bus message dropped");
  }

  private onBus(channel: string, payload: string): void {
    const session = this.sessions.get(channel);
    if (session) return session.onBus(payload);
    if (this.gatewayChannels.has(channel)) return handleGatewayMessage(this.fanout, payload);
    const decoded = channel === this.replyChannel ? decodeToRequester(payload) : channel === this.keys.events() ? decodeClusterEvent(payload) : null;
    if (decoded === null) return;
    if (!decoded.ok) return this.badBus(channel, decoded.problem);
    const message = decoded.message;
    if (message.type === "lost") {
      // Rare, so every session is asked rather than indexing sessions by instance.
      for (const s of this.sessions.values()) s.onLost(message.instance);
      this.requester.onLost(message.instance);
    } else {
      this.requester.handleReply(message);
    }
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node stops listening for the socket's errors once it is handed over: a reset during the
    // ticket check would otherwise be an unhandled 'error' event.
    socket.on("error", (err) => this.logger.debug({ err }, "upgrade socket error"));
    let answered = false;
    this.guard.upgrade(
      socket,
      () => answered,
      () => {
        const refusal = upgradeRefusal(req, { path: CONNECT_PATH, draining: this.draining, hostCheck: this.hostCheck });
        if (refusal !== null) return void socket.end(refusal);
        answered = true;
        const refused = this.sockets.upgradeRefusal(req.socket.remoteAddress ?? "unknown");
        if (refused !== null) return this.refuseUpgrade(req, socket, head, refused);
        return this.auth.identify(req).then(
          (identity) => this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, identity)),
          (err: unknown) => {
            const e = toServmanError(err, "unauthorized");
            this.metrics.refusedTickets.inc();
            this.logger.info({ reason: e.message }, "connection refused: ticket");
            this.refuseUpgrade(req, socket, head, e);
          },
        );
      },
    );
  }

  /** Completes the handshake only to say why (error frame, close 1008): browsers see no HTTP status. */
  private refuseUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, err: ServmanError): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send(JSON.stringify(err.toFrame()));
      ws.close(CLOSE_POLICY, err.message.slice(0, 120));
    });
  }

  private onConnection(ws: WebSocket, identity: Identity): void {
    corkSendsPerTick(ws);
    this.keepalive.track(ws);
    const session = new ClientSession(ws, this.ctx, this.logger, identity);
    const log = this.logger.child({ session: session.id });
    this.sessions.set(session.channel, session);
    this.metrics.connections.inc();
    this.metrics.connectionsTotal.inc();
    // Frames that arrive before the session channel is subscribed wait, in order.
    let early: [Buffer, boolean][] | null = [];
    ws.on(
      "message",
      guarded("frame", this.fault, (data: Buffer, isBinary: boolean) => {
        if (early) early.push([data, isBinary]);
        else session.onFrame(data, isBinary);
      }),
    );
    ws.on("error", (err: Error & { code?: string }) => {
      if (err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") this.metrics.oversizedFrames.inc();
      log.debug({ err }, "client connection error");
    });
    // setTimeout holds at most ~24.8 days; a longer-lived ticket re-arms until it expires.
    let expiry: NodeJS.Timeout | undefined;
    const armExpiry = (expiresAt: number) => {
      const left = expiresAt - Date.now();
      expiry = left <= 0 ? setTimeout(() => ws.close(CLOSE_POLICY, "ticket expired"), 0) : setTimeout(() => armExpiry(expiresAt), Math.min(left, 2 ** 31 - 1));
    };
    if (identity.expiresAt !== null) armExpiry(identity.expiresAt);
    ws.on(
      "close",
      guarded("connection close", this.fault, (code: number) => {
        clearTimeout(expiry);
        this.metrics.connections.dec();
        this.release(session, ENDING_CLOSE_CODES.has(code));
      }),
    );
    subscribe(this.sub, session.channel).then(
      () => {
        if (ws.readyState !== ws.OPEN) return;
        session.welcome();
        const queued = early ?? [];
        early = null;
        for (const [data, isBinary] of queued) session.onFrame(data, isBinary);
      },
      (err: Error) => {
        log.warn({ err }, "could not subscribe a session; closing it");
        ws.close(CLOSE_INTERNAL_ERROR, "redis unavailable");
      },
    );
  }

  /**
   * A connection closed. An ending session is forgotten now; a detached one keeps its channel until
   * the unsubscribe is done, so events that arrive meanwhile are kept for whoever resumes it.
   */
  private release(session: ClientSession, end: boolean): void {
    const channel = session.channel;
    const done = session
      .onClose(end)
      // A connection that took the session over on this gateway listens on the same channel now.
      .then(() => ((this.sessions.get(channel) ?? session) === session ? unsubscribe(this.sub, channel) : undefined))
      // onClose logs its own failures; what is left is the unsubscribe.
      .catch((err: unknown) => this.logger.warn({ err, channel }, "could not unsubscribe a closed session's channel"))
      .then(() => {
        if (this.sessions.get(channel) === session) this.sessions.delete(channel);
        return session.detached();
      })
      .finally(() => this.detaching.delete(done));
    this.detaching.add(done);
  }

  /** A session took over an older one: it listens on that session's channel from now on. */
  private async rebind(oldChannel: string, newChannel: string): Promise<void> {
    const session = this.sessions.get(oldChannel);
    if (!session) return;
    this.sessions.set(newChannel, session);
    this.sessions.delete(oldChannel);
    await subscribe(this.sub, newChannel);
    await unsubscribe(this.sub, oldChannel).catch((err: unknown) => this.logger.warn({ err, channel: oldChannel }, "could not unsubscribe a resumed session's old channel"));
  }

  /** Stops accepting, closes clients with 1001 (they resume elsewhere), then closes. Idempotent. */
  drain(deadlineMs = 5_000): Promise<void> {
    return this.shutdown(deadlineMs);
  }

  /** Closes now; also cuts short a drain in progress. Idempotent. */
  close(): Promise<void> {
    if (this.closing) {
      for (const ws of this.wss.clients) ws.terminate();
      return this.closing;
    }
    return this.shutdown(0);
  }

  private shutdown(deadlineMs: number): Promise<void> {
    this.closing ??= (async () => {
      this.draining = true;
      this.logger.info({ connections: this.sessions.size }, "gateway closing");
      // The server keeps listening while clients leave, so load balancers read /healthz 503 and
      // new upgrades get 503; it stops once they are gone (or the deadline passes).
      for (const ws of this.wss.clients) ws.close(CLOSE_GOING_AWAY, "gateway shutting down");
      const deadline = new Promise<void>((resolve) => setTimeout(resolve, deadlineMs).unref());
      const allClosed = new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (this.wss.clients.size === 0) {
            clearInterval(check);
            resolve();
          }
        }, 20);
        check.unref();
        void deadline.then(() => {
          clearInterval(check);
          resolve();
        });
      });
      await allClosed;
      for (const ws of this.wss.clients) ws.terminate();
      // Each close event starts its session's detach; those are awaited below.
      for (let i = 0; i < 100 && this.wss.clients.size > 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      this.server.closeAllConnections();
      await serverClosed;
      await new Promise<void>((resolve) => this.wss.close(() => resolve()));
      await Promise.allSettled([...this.detaching]);
      this.keepalive.stop();
      this.fanout.order.close();
      this.reaper.close();
      await this.keeper.close();
      this.health.stop();
      await this.requester.close();
      await Promise.allSettled([this.sub.quit(), this.redis.quit()]);
      this.logger.info("gateway closed");
    })();
    return this.closing;
  }
}
