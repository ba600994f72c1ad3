/**
 * What a client session is joined to and must stop when it ends, mirrored in the session store
 * (from its first join or launch on) so that another gateway can resume it, and how it ends:
 * over now (leaves, stops), or detached to wait for a resume.
 */
import type { RedisClient } from "../src/redis-connection.js";
import type { Logger } from "pino";
import { ServmanError } from "../src/errors.js";
import type { Keys } from "../src/keys.js";
import type { Requester } from "../src/launch/requester.js";
import type { ToInstance } from "../src/protocol/bus-messages.js";
import type { SessionStore, StoredSession } from "../src/registry/session-store.js";
import { publish } from "../src/pubsub.js";

export interface MembershipContext {
  readonly gatewayId: string;
  readonly redis: RedisClient;
  readonly keys: Keys;
  readonly requester: Requester;
  readonly store: SessionStore;
  readonly resumeWindowMs: number;
}

/** What ending a session needs: the bus and the requester. */
type SessionBus = Pick<MembershipContext, "redis" | "keys" | "requester">;

/** Tells an instance that `session` is gone (`disconnected`), or was removed (`kicked`). */
function sendLeave(bus: SessionBus, session: string, instance: string, logger: Logger, reason: "disconnected" | "kicked" = "disconnected"): void {
  const leave: ToInstance = { type: "leave", client: session, reason };
  void publish(bus.redis, bus.keys.instanceChannel(instance), JSON.stringify(leave)).catch((err: unknown) => logger.warn({ err, instance }, "could not tell an instance a session left"));
}

/** Stops an instance launched with closeOnOwnerLeave by `session`. */
function stopForOwner(bus: SessionBus, session: string, instance: string, logger: Logger): void {
  bus.requester.stop(instance, session).catch((err: Error) => logger.warn({ instance, err }, "closeOnOwnerLeave stop failed"));
}

/**
 * A session is over (its client closed it, or nobody resumed it in time): its instances hear
 * `leave`, and those it launched with closeOnOwnerLeave are stopped.
 */
export function endSession(bus: SessionBus, session: Pick<StoredSession, "id" | "joined" | "closeOnLeave">, logger: Logger): void {
  for (const instance of session.joined) sendLeave(bus, session.id, instance, logger);
  for (const instance of session.closeOnLeave) stopForOwner(bus, session.id, instance, logger);
}

export class SessionMembership {
  /** Instances the session is joined to. */
  readonly joined = new Set<string>();
  /** Instances it launched with closeOnOwnerLeave. */
  readonly closeOnLeave = new Set<string>();
  /** Settles once the session is in the store. */
  private stored: Promise<void> | undefined;

  constructor(
    private readonly ctx: MembershipContext,
    private readonly session: { readonly id: string; readonly resumeToken: string; readonly user: string | null },
    private readonly logger: Logger,
  ) {}

  /** True once the session was written to the store (or taken from it). */
  get isStored(): boolean {
    return this.stored !== undefined;
  }

  /** Writes the session to the store once, so it can be resumed; later calls share that write. */
  persist(): Promise<void> {
    if (this.ctx.resumeWindowMs === 0) return Promise.resolve();
    this.stored ??= this.ctx.store.open(this.session.id, this.ctx.gatewayId, this.session.resumeToken, this.session.user).catch((err: unknown) => {
      this.stored = undefined;
      throw new ServmanError("unavailable", "could not record the session: RedisClient is unreachable", { cause: err });
    });
    return this.stored;
  }

  /** The session as the store should hold it, or null while it is not stored. */
  snapshot(): StoredSession | null {
    if (!this.stored) return null;
    return { id: this.session.id, user: this.session.user, joined: [...this.joined], closeOnLeave: [...this.closeOnLeave], tail: [] };
  }

  /** Takes over a stored session's state (a resume). */
  adopt(stored: StoredSession): void {
    this.stored = Promise.resolve();
    for (const instance of stored.joined) this.joined.add(instance);
    for (const instance of stored.closeOnLeave) this.closeOnLeave.add(instance);
  }

  private note(kind: "joined" | "closeOnLeave", instance: string, on: boolean): void {
    if (!this.stored) return;
    const { store } = this.ctx;
    const id = this.session.id;
    const write = kind === "joined" ? store.setJoined(id, instance, on) : store.setCloseOnLeave(id, instance, on);
    write.catch((err: Error) => this.logger.warn({ err, instance }, "could not record a session change"));
  }

  /**
   * Records a join in the store before it is asked for: a gateway that dies right after the
   * service accepted must not leave a join that nobody would ever end.
   */
  async recordJoin(instance: string): Promise<void> {
    if (this.stored) await this.ctx.store.setJoined(this.session.id, instance, true);
  }

  /** The join recorded by `recordJoin` was accepted. */
  addJoined(instance: string): void {
    this.joined.add(instance);
  }

  /** A join recorded by `recordJoin` did not happen. */
  dropJoin(instance: string): void {
    if (!this.joined.has(instance)) this.note("joined", instance, false);
  }

  /** True if the session was joined to `instance`. */
  forgetJoined(instance: string): boolean {
    if (!this.joined.delete(instance)) return false;
    this.note("joined", instance, false);
    return true;
  }

  /** Records, before the launch, an instance to stop when the session ends. */
  async addCloseOnLeave(instance: string): Promise<void> {
    this.closeOnLeave.add(instance);
    if (this.stored) await this.ctx.store.setCloseOnLeave(this.session.id, instance, true);
  }

  /** The session no longer stops `instance` when it ends. */
  forgetCloseOnLeave(instance: string): void {
    if (this.closeOnLeave.delete(instance)) this.note("closeOnLeave", instance, false);
  }

  /** Stops an instance launched with closeOnOwnerLeave (its owner left it or went away). */
  stopCloseOnLeave(instance: string): void {
    this.forgetCloseOnLeave(instance);
    stopForOwner(this.ctx, this.session.id, instance, this.logger);
  }

  /** Tells an instance this session is gone (`disconnected`). */
  leave(instance: string): void {
    sendLeave(this.ctx, this.session.id, instance, this.logger);
  }

  /** Ends a join the session may no longer have (a resume's new ticket does not allow it): `leave` `kicked`. */
  kick(instance: string): void {
    if (this.forgetJoined(instance)) sendLeave(this.ctx, this.session.id, instance, this.logger, "kicked");
  }

  /** The session is over: its instances hear `leave`, owned ones stop, the store forgets it. */
  async end(): Promise<void> {
    endSession(this.ctx, { id: this.session.id, joined: [...this.joined], closeOnLeave: [...this.closeOnLeave] }, this.logger);
    this.joined.clear();
    this.closeOnLeave.clear();
    if (!this.stored) return;
    await this.ctx.store.end(this.session.id, this.ctx.gatewayId).catch((err: Error) => this.logger.warn({ err }, "could not remove an ended session"));
  }

  /** The connection is gone and the session waits in the store for a resume; `tail`: events that came after. */
  async detach(tail: readonly string[]): Promise<void> {
    const ok = await this.stored?.then(
      () => true,
      () => false,
    );
    // Never stored: nothing could resume it.
    if (!ok) return this.end();
    try {
      if (await this.ctx.store.detach(this.session.id, this.ctx.gatewayId, Date.now() + this.ctx.resumeWindowMs, tail)) {
        this.logger.debug({ joined: this.joined.size, tail: tail.length }, "session detached; waiting for a resume");
      }
    } catch (err) {
      this.logger.warn({ err }, "could not detach a session; it ends when its gateway is reaped");
    }
  }
}
