/**
 * A client's `launch` and `stop` (docs/protocol.md#launch, docs/protocol.md#stop): ticket checks, quotas, ownership, and the
 * `closeOnOwnerLeave` bookkeeping of the session that launches.
 */
import type { Logger } from "pino";
import { ServmanError, toServmanError } from "../src/errors.js";
import type { ToSession } from "../src/protocol/bus-messages.js";
import { newInstanceId } from "../src/launch/requester.js";
import type { LaunchRequest } from "../src/protocol/client-messages.js";
import type { SessionAccess } from "./session-access.js";
import type { SessionContext } from "./session-context.js";
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
  /** True once the connection has closed. */
  closed(): boolean;
}

/** Launches for the session; null when the session closed meanwhile (nobody to answer). */
export async function launchOwned(from: OwnerRequester, req: LaunchRequest): Promise<{ instance: string; node: string } | null> {
  const { ctx, access, membership, user } = from;
  const options = req.options ?? {};
  if (!access.mayLaunch(req.task)) throw new ServmanError("forbidden", `this ticket does not allow launching ${JSON.stringify(req.task)}`);
  // An explicit id outside the ticket's instances could probe which ids exist (already_exists).
  if (req.instance !== undefined && !access.inScope(req.instance, null)) {
    throw new ServmanError("forbidden", `this ticket does not allow the instance id ${JSON.stringify(req.instance)}`);
  }
  // The owner is this session: stored first, so a resumed session still owns what it launched.
  await membership.persist();
  // An instance to stop with its owner is recorded before it exists: a gateway dying as the
  // launch completes must not leave it running forever.
  const instance = req.instance ?? (options.closeOnOwnerLeave ? newInstanceId() : undefined);
  const recorded = options.closeOnOwnerLeave === true && !membership.closeOnLeave.has(instance!);
  if (recorded) await membership.addCloseOnLeave(instance!);
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
    });
    ctx.metrics.launches.inc({ result: "ok" });
    if (options.closeOnOwnerLeave && from.closed()) {
      membership.stopCloseOnLeave(result.instance);
      return null;
    }
    return result;
  } catch (err) {
    if (recorded) membership.forgetCloseOnLeave(instance!);
    const code = toServmanError(err).code;
    ctx.metrics.launches.inc({ result: code });
    if (code === "rate_limited") ctx.metrics.limited.inc({ limit: "instances_per_user" });
    throw err;
  }
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
