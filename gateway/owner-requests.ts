/**
 * A client's `launch` and `stop` (docs/protocol.md#launch, docs/protocol.md#stop): ticket checks, quotas, ownership, and the
 * `closeOnOwnerLeave` bookkeeping of the session that launches.
 */
import type { Logger } from "pino";
import { ServmanError, toServmanError } from "../src/errors.js";
import type { ToInstance, ToSession } from "../src/protocol/bus-messages.js";
import { newInstanceId, type LaunchResult } from "../src/launch/requester.js";
import type { LaunchRequest } from "../src/protocol/client-messages.js";
import type { SessionAccess } from "./session-access.js";
import type { SessionContext } from "./session-context.js";
import type { SessionJoins } from "./session-joins.js";
import type { SessionMembership } from "./session-membership.js";
import { publish } from "../src/pubsub.js";

/** The session a launch or stop comes from. */
export interface OwnerRequester {
  readonly ctx: SessionContext;
  readonly session: string;
  readonly user: string | null;
  readonly access: SessionAccess;
  readonly membership: SessionMembership;
  readonly logger: Logger;
  /** The session's joins: a launch that carries `join` registers its join there. */
  readonly joins: SessionJoins;
  /** True once the connection has closed. */
  closed(): boolean;
}

/** What a launch answers: `joined` (and `reason`) only when it carried `join`. */
export interface OwnedLaunch {
  instance: string;
  node: string;
  joined?: boolean;
  reason?: string;
}

/** Launches for the session; null when the session closed meanwhile (nobody to answer). */
export async function launchOwned(from: OwnerRequester, req: LaunchRequest): Promise<OwnedLaunch | null> {
  const { ctx, access, membership, user } = from;
  const options = req.options ?? {};
  if (!access.mayLaunch(req.task)) throw new ServmanError("forbidden", `this ticket does not allow launching ${JSON.stringify(req.task)}`);
  // An explicit id outside the ticket's instances could probe which ids exist (already_exists).
  if (req.instance !== undefined && !access.inScope(req.instance, null)) {
    throw new ServmanError("forbidden", `this ticket does not allow the instance id ${JSON.stringify(req.instance)}`);
  }
  const instance = req.instance ?? (options.closeOnOwnerLeave || req.join !== undefined ? newInstanceId() : undefined);
  // Registered before any wait: sends that follow the launch wait behind its join, in order.
  const joining = req.join !== undefined ? from.joins.expect(instance!) : undefined;
  const recorded = options.closeOnOwnerLeave === true && !membership.closeOnLeave.has(instance!);
  try {
    // The owner is this session: stored first, so a resumed session still owns what it launched.
    await membership.persist();
    // The join is recorded like a `join`'s (session-joins.ts), before the node may accept it.
    if (joining) await membership.recordJoin(instance!);
    // An instance to stop with its owner is recorded before it exists: a gateway dying as the
    // launch completes must not leave it running forever.
    if (recorded) await membership.addCloseOnLeave(instance!);
  } catch (err) {
    if (joining) from.joins.settle(instance!, toServmanError(err));
    throw err;
  }
  const joinData = typeof req.join === "object" ? (req.join.data ?? null) : null;
  try {
    const result = await ctx.requester.launch({
      task: req.task,
      ...(req.args !== undefined ? { args: req.args } : {}),
      ...(instance !== undefined ? { instance } : {}),
      options,
      owner: from.session,
      ownerUser: user,
      // Quotas bound users (tickets); admins and open mode have none.
      ...(user !== null && !access.admin ? { quota: ctx.limits.maxInstancesPerUser } : {}),
      ...(joining ? { join: { client: from.session, user, data: joinData, ...(ctx.routeAs !== undefined ? { gateway: ctx.routeAs } : {}) } } : {}),
    });
    ctx.metrics.launches.inc({ result: "ok" });
    const joined = joining ? await joinedAtLaunch(from, result, joining, joinData) : undefined;
    if (options.closeOnOwnerLeave && from.closed()) {
      membership.stopCloseOnLeave(result.instance);
      return null;
    }
    if (from.closed()) return null;
    return { instance: result.instance, node: result.node, ...joined };
  } catch (err) {
    if (joining) from.joins.settle(instance!, new ServmanError("not_joined", `the launch of ${instance} failed`));
    if (recorded) membership.forgetCloseOnLeave(instance!);
    const code = toServmanError(err).code;
    ctx.metrics.launches.inc({ result: code });
    if (code === "rate_limited") ctx.metrics.limited.inc({ limit: "instances_per_user" });
    throw err;
  }
}

/**
 * Settles the session's join of a launched instance by the node's answer (or asks for it the usual
 * way when the answer was not heard), and says how it went.
 */
async function joinedAtLaunch(from: OwnerRequester, result: LaunchResult, joining: Promise<ServmanError | null>, data: unknown): Promise<{ joined: boolean; reason?: string }> {
  const { instance } = result;
  if (result.joined === undefined) from.joins.ask(instance, data);
  else if (!from.joins.settle(instance, result.joined ? null : new ServmanError("join_rejected", result.reason ?? "refused by the service")) && result.joined) {
    // The client left, or its connection closed, before the node answered: the node may have
    // taken the join after the leave reached it, so it hears the leave again.
    const leave: ToInstance = { type: "leave", client: from.session, reason: from.closed() ? "disconnected" : "left" };
    void publish(from.ctx.redis, from.ctx.keys.instanceChannel(instance), JSON.stringify(leave)).catch(() => {});
  }
  const err = await joining;
  return err === null ? { joined: true } : { joined: false, reason: err.message };
}

/** Stops an instance for its owner (or an admin); anyone else is refused and the owner alerted. */
export async function stopOwnedBy(from: OwnerRequester, instance: string): Promise<void> {
  const { ctx, access } = from;
  const record = await ctx.requester.instances.get(instance);
  if (!access.inScope(instance, record)) throw new ServmanError("forbidden", `this ticket does not allow stopping ${instance}`);
  if (!record) throw new ServmanError("unknown_instance", `no instance ${JSON.stringify(instance)}`);
  if (!access.owns(record) && !access.admin) {
    if (record.owner !== null) {
      const alert: ToSession = { type: "alert", instance: record.instance, kind: "stop_refused", session: from.session, user: from.user };
      // The alert is a courtesy to the owner; the refusal itself is logged and answered below.
      void publish(ctx.redis, ctx.keys.sessionChannel(record.owner), JSON.stringify(alert)).catch(() => {});
    }
    from.logger.warn({ instance: record.instance }, "stop refused: not the owner");
    throw new ServmanError("forbidden", `only the owner of ${instance} may stop it`);
  }
  await ctx.requester.stop(instance, from.session);
  from.membership.forgetCloseOnLeave(instance);
}
