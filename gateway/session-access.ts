/**
 * Who may do what with an instance, for one session: ownership, a ticket's `instances` and
 * `tasks` claims, and an instance's `allow` / `deny` lists (docs/security.md).
 */
import type { InstanceRecord } from "../src/registry/instance-registry.js";
import type { Identity } from "./gateway-auth.js";

/** True when `list` names the user (ticket `sub`) or, in open mode, the session id. */
function listed(list: readonly string[] | undefined, user: string | null, session: string): boolean {
  return list !== undefined && ((user !== null && list.includes(user)) || list.includes(session));
}

export class SessionAccess {
  constructor(
    private readonly identity: Identity,
    /** The session id (it changes when the session resumes an older one). */
    private readonly session: () => string,
  ) {}

  get admin(): boolean {
    return this.identity.admin;
  }

  owns(record: InstanceRecord): boolean {
    const user = this.identity.user;
    return record.owner === this.session() || (user !== null && record.ownerUser === user);
  }

  /** A ticket's `instances` claim bounds which ids its holder may join, stop or launch (its own instances aside). */
  inScope(instance: string, record: InstanceRecord | null): boolean {
    return this.identity.admin || this.identity.instances === null || this.identity.instances.has(instance) || (record !== null && this.owns(record));
  }

  mayJoin(record: InstanceRecord): boolean {
    if (this.identity.admin || this.owns(record)) return true;
    const { allow, deny } = record.options;
    const { user } = this.identity;
    if (listed(deny, user, this.session())) return false;
    return allow === undefined || listed(allow, user, this.session());
  }

  mayLaunch(task: string): boolean {
    return this.identity.admin || this.identity.tasks === null || this.identity.tasks.has(task);
  }
}
