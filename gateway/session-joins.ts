/**
 * Join pipelining for one session (docs/protocol.md "Join pipelining"): a join is checked
 * (ticket scope, existence, allow/deny), recorded in the session store, then asked of the
 * instance's node; sends made meanwhile wait behind it, in order, and go out once it is joined
 * (or fail with it). A join the node does not answer within 10 s fails with `timeout`.
 */
import { ServmanError, toServmanError } from "../src/errors.js";
import type { ToInstance } from "../src/protocol/bus-messages.js";
import { idOf, type JoinRequest, type RequestId, type ServerFrame } from "../src/protocol/client-messages.js";
import type { SessionAccess } from "./session-access.js";
import type { SessionContext } from "./session-context.js";
import type { SessionMembership } from "./session-membership.js";
import { publish } from "../src/pubsub.js";

/** A join is answered `timeout` if its instance's node says nothing for this long. */
const JOIN_TIMEOUT_MS = 10_000;

interface PendingJoin {
  ids: (RequestId | undefined)[];
  /** Sends made before the join was answered, as bus payloads with their request ids (and numbers). */
  queued: { payload: string; id: RequestId | undefined; ack: boolean; seq: number | undefined }[];
  timer: NodeJS.Timeout | undefined;
  /** A launch waiting for this join (docs/protocol.md#launch-and-join): told how it ended. */
  done?: (err: ServmanError | null) => void;
}

/** What the joins need from their session. */
export interface JoiningSession {
  readonly ctx: SessionContext;
  readonly membership: SessionMembership;
  readonly access: SessionAccess;
  readonly user: string | null;
  id(): string;
  channel(): string;
  send(frame: ServerFrame): void;
  fail(err: unknown, id: RequestId | undefined): void;
  /** Publishes a client message to an instance (reporting one that reached nobody). */
  relay(instance: string, payload: string, id: RequestId | undefined, ack: boolean, seq: number | undefined): void;
  /** A numbered send was refused (its join failed). */
  settled(seq: number | undefined): void;
}

export class SessionJoins {
  private readonly pending = new Map<string, PendingJoin>();

  constructor(private readonly session: JoiningSession) {}

  get size(): number {
    return this.pending.size;
  }

  has(instance: string): boolean {
    return this.pending.has(instance);
  }

  /** Queues a send behind a pending join of `instance`; false when there is none. */
  queue(instance: string, payload: string, id: RequestId | undefined, ack = false, seq?: number): boolean {
    const pending = this.pending.get(instance);
    if (!pending) return false;
    pending.queued.push({ payload, id, ack, seq });
    return true;
  }

  join(req: JoinRequest): void {
    const { ctx, membership } = this.session;
    const instance = req.instance;
    if (membership.joined.has(instance)) return this.session.send({ type: "joined", ...idOf(req.id), instance });
    const existing = this.pending.get(instance);
    if (existing) {
      existing.ids.push(req.id);
      return;
    }
    if (membership.joined.size + this.pending.size >= ctx.limits.maxJoinsPerConnection) {
      ctx.metrics.limited.inc({ limit: "joins" });
      return this.session.fail(new ServmanError("forbidden", `a connection may join at most ${ctx.limits.maxJoinsPerConnection} instances`), req.id);
    }
    // Registered synchronously: sends that follow this join are queued behind it, in order.
    const pending: PendingJoin = { ids: [req.id], queued: [], timer: undefined };
    this.pending.set(instance, pending);
    void this.request(instance, pending, req.data).catch((err) => this.finish(instance, pending, toServmanError(err)));
  }

  /**
   * A launch carries the session's join of `instance` (docs/protocol.md#launch-and-join): from
   * now on sends to it wait behind the join, as behind a `join`. Settles with null once joined,
   * else with why not (`settle`, `abandon`). Throws `forbidden` past the connection's join limit.
   */
  expect(instance: string): Promise<ServmanError | null> {
    const { ctx, membership } = this.session;
    if (membership.joined.has(instance)) throw new ServmanError("already_exists", `instance ${JSON.stringify(instance)} already exists`);
    if (this.pending.has(instance)) throw new ServmanError("unavailable", `a join of ${instance} is already in flight`);
    if (membership.joined.size + this.pending.size >= ctx.limits.maxJoinsPerConnection) {
      ctx.metrics.limited.inc({ limit: "joins" });
      throw new ServmanError("forbidden", `a connection may join at most ${ctx.limits.maxJoinsPerConnection} instances`);
    }
    return new Promise((resolve) => this.pending.set(instance, { ids: [], queued: [], timer: undefined, done: resolve }));
  }

  /**
   * The launch's node did not say how its join went (its reply was lost, or it predates joins at
   * launch): the join recorded by `expect` is asked the usual way.
   */
  ask(instance: string, data: unknown): void {
    const pending = this.pending.get(instance);
    if (pending) void this.send(instance, pending, data).catch((err) => this.finish(instance, pending, toServmanError(err)));
  }

  private async request(instance: string, pending: PendingJoin, data: unknown): Promise<void> {
    const { ctx, membership, access } = this.session;
    const [record] = await Promise.all([ctx.requester.instances.get(instance), membership.persist()]);
    if (this.pending.get(instance) !== pending) return;
    // Outside a ticket's `instances`, whether the instance exists is none of the client's business.
    if (!access.inScope(instance, record)) throw new ServmanError("forbidden", `this ticket does not allow joining ${instance}`);
    if (!record) throw new ServmanError("unknown_instance", `no instance ${JSON.stringify(instance)}`);
    if (record.state === "launching") throw new ServmanError("unavailable", `instance ${instance} is still launching; join once launched`);
    if (!access.mayJoin(record)) throw new ServmanError("forbidden", `not allowed to join ${instance}`);
    await membership.recordJoin(instance);
    await this.send(instance, pending, data);
  }

  /** Asks the instance's node for the join (recorded already). */
  private async send(instance: string, pending: PendingJoin, data: unknown): Promise<void> {
    const { ctx } = this.session;
    if (this.pending.get(instance) !== pending) return;
    pending.timer = setTimeout(() => this.finish(instance, pending, new ServmanError("timeout", `instance ${instance} did not answer the join`)), JOIN_TIMEOUT_MS);
    const join: ToInstance = {
      type: "join",
      client: this.session.id(),
      user: this.session.user,
      data: data ?? null,
      reply: this.session.channel(),
      ...(ctx.routeAs !== undefined ? { gateway: ctx.routeAs } : {}),
    };
    const receivers = await publish(ctx.redis, ctx.keys.instanceChannel(instance), JSON.stringify(join));
    if (receivers === 0) throw new ServmanError("unknown_instance", `instance ${instance} is not running`);
  }

  /** Ends the pending join of `instance`, if any: joined when `err` is null, else every waiting request gets `err`. */
  settle(instance: string, err: ServmanError | null): boolean {
    const pending = this.pending.get(instance);
    if (pending) this.finish(instance, pending, err);
    return pending !== undefined;
  }

  private finish(instance: string, pending: PendingJoin, err: ServmanError | null): void {
    if (this.pending.get(instance) !== pending) return;
    this.pending.delete(instance);
    clearTimeout(pending.timer);
    const { membership } = this.session;
    pending.done?.(err);
    if (err === null) {
      membership.addJoined(instance);
      for (const id of pending.ids) this.session.send({ type: "joined", ...idOf(id), instance });
      for (const q of pending.queued) this.session.relay(instance, q.payload, q.id, q.ack, q.seq);
      return;
    }
    membership.dropJoin(instance);
    for (const id of pending.ids) this.session.fail(err, id);
    for (const q of pending.queued) {
      this.session.fail(new ServmanError("not_joined", `message not delivered: join of ${instance} failed`), q.id);
      this.session.settled(q.seq);
    }
  }

  /** The connection closed: joins in flight are abandoned (their instances hear `leave`); nobody is answered. */
  abandon(): void {
    const { membership } = this.session;
    for (const [instance, pending] of this.pending) {
      clearTimeout(pending.timer);
      membership.leave(instance);
      membership.dropJoin(instance);
      pending.done?.(new ServmanError("unavailable", "the connection closed"));
    }
    this.pending.clear();
  }
}
