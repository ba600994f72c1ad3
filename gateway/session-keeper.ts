/**
 * Keeps resumable sessions honest across the cluster. Every gateway runs one:
 * - it refreshes the gateway's liveness key, so others can tell when it died;
 * - it detaches the sessions of a gateway that died (their resume window starts then);
 * - it ends sessions whose resume window passed: their instances hear `leave` (`disconnected`),
 *   and those launched with `closeOnOwnerLeave` are stopped.
 * Each dead gateway and each expired session is taken by exactly one keeper (Lua in SessionStore).
 */
import type { RedisClient } from "../src/redis-connection.js";
import type { Logger } from "pino";
import type { Keys } from "../src/keys.js";
import type { Requester } from "../src/launch/requester.js";
import { EpochWatch } from "../src/registry/epoch-watch.js";
import { DEATH_CONFIRM_MS, DeathConfirmation, HEARTBEAT_MS, LIVENESS_TTL_MS, membersWithoutKey } from "../src/registry/liveness.js";
import type { SessionStore, StoredSession } from "../src/registry/session-store.js";
import { endSession } from "./session-membership.js";

const SWEEP_MS = 1_000;

export interface SessionKeeperOptions {
  gatewayId: string;
  redis: RedisClient;
  keys: Keys;
  store: SessionStore;
  requester: Requester;
  resumeWindowMs: number;
  logger: Logger;
  /** The sessions this gateway holds, with their resume tokens (written back if Redis lost its data). */
  sessions(): Iterable<{ session: StoredSession; token: string }>;
}

export class SessionKeeper {
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly deaths = new DeathConfirmation(DEATH_CONFIRM_MS);

  private readonly epoch: EpochWatch;

  constructor(private readonly options: SessionKeeperOptions) {
    this.epoch = new EpochWatch(options.redis, options.keys.sessionsEpoch());
  }

  async start(): Promise<void> {
    await this.beat();
    this.heartbeatTimer ??= setInterval(
      () => void this.beat().catch((err: unknown) => this.options.logger.warn({ err }, "gateway liveness write failed; other gateways reap this one's sessions if it keeps failing")),
      HEARTBEAT_MS,
    );
    this.sweepTimer ??= setInterval(() => void this.sweep(), SWEEP_MS);
  }

  private async beat(): Promise<void> {
    const { redis, keys, gatewayId } = this.options;
    await redis.multi().set(keys.gateway(gatewayId), String(Date.now()), "PX", LIVENESS_TTL_MS).sadd(keys.gateways(), gatewayId).exec();
    await this.epoch.check(() => this.rewrite());
  }

  /** Redis lost its data: the sessions this gateway holds are written back (detached ones are lost). */
  private async rewrite(): Promise<void> {
    const { store, gatewayId, logger } = this.options;
    let count = 0;
    for (const { session, token } of this.options.sessions()) {
      await store.restore(session, gatewayId, token);
      count++;
    }
    logger.warn({ sessions: count }, "Redis lost its data: this gateway's sessions are written back");
  }

  /** One pass: reaps dead gateways and ends expired sessions. Never throws. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    const { redis, keys, store, requester, logger, resumeWindowMs } = this.options;
    try {
      const missing = await membersWithoutKey(redis, keys.gateways(), (id) => keys.gateway(id));
      for (const gateway of this.deaths.confirmed(missing)) {
        this.deaths.forget(gateway);
        if ((await redis.srem(keys.gateways(), gateway)) !== 1) continue;
        const detached = await store.orphan(gateway, Date.now() + resumeWindowMs);
        logger.warn({ deadGateway: gateway, sessions: detached }, "gateway stopped answering; its sessions wait to be resumed");
      }
      for (const session of await store.takeExpired(Date.now())) {
        logger.debug({ session: session.id, joined: session.joined.length }, "session not resumed in time; ending it");
        endSession({ redis, keys, requester }, session, logger);
      }
    } catch (err) {
      logger.warn({ err }, "session sweep failed; retrying");
    } finally {
      this.sweeping = false;
    }
  }

  /**
   * Stops the timers and removes this gateway's liveness key; sessions it still holds (their
   * detach failed) start their resume window now, so some keeper ends them. Idempotent.
   */
  async close(): Promise<void> {
    clearInterval(this.heartbeatTimer);
    clearInterval(this.sweepTimer);
    this.heartbeatTimer = this.sweepTimer = undefined;
    const { redis, keys, gatewayId, store, resumeWindowMs, logger } = this.options;
    // On failure, this gateway's record expires and another keeper orphans its sessions instead.
    const warn = (err: unknown) => logger.warn({ err }, "could not hand this gateway's sessions over on close; another gateway's keeper will");
    await store.orphan(gatewayId, Date.now() + resumeWindowMs).catch(warn);
    await redis.multi().del(keys.gateway(gatewayId)).srem(keys.gateways(), gatewayId).exec().catch(warn);
  }
}
