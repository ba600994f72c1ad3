/**
 * The clients of one instance and the join handshake with its service: joins wait for the
 * service's `accept` or `reject`; after a restart, members are joined again (a member the new
 * process rejects is kicked); events for members go out through the instance's delivery.
 */
import type { ToSession } from "../src/protocol/bus-messages.js";
import type { ClosedReason } from "../src/protocol/client-messages.js";
import type { LeaveReason, NodeToService } from "../src/protocol/task-messages.js";

/** Where the members' traffic goes. */
export interface MembersOutput {
  toService(message: NodeToService): void;
  /** A join's answer, on the joining session's channel. */
  toJoinReply(channel: string, message: ToSession): void;
  /** One event (JSON text) for a client's session, kept if the client is away. */
  deliver(client: string, payload: string): void;
  /** One event (JSON text) for each of `clients` (grouped by gateway: member-delivery.ts). */
  send(payload: string, clients: string[]): void;
  /** The client's session is held by `gateway` (undefined: its gateway did not say). */
  route(client: string, gateway: string | undefined): void;
  /** A joiner that was refused: where it was no longer matters. */
  forget(client: string): void;
  /** Who is joined changed (idle clocks). */
  changed(): void;
}

/**
 * Where a join's answer goes: the joining session's channel, or (a join made as part of the
 * launch, docs/protocol.md#launch-and-join) a function that puts it in the `launched` reply.
 */
type JoinReply = string | ((joined: boolean, reason: string | undefined) => void);

export class InstanceMembers {
  /** Joined clients: session id -> user id. */
  private readonly joined = new Map<string, string | null>();
  /** Joins sent to the service and not answered yet: session id -> user and reply channel. */
  private readonly pending = new Map<string, { user: string | null; reply: JoinReply }>();
  /** Members whose join is being replayed to a restarted process. */
  private readonly rejoining = new Set<string>();

  constructor(
    private readonly instance: string,
    private readonly out: MembersOutput,
  ) {}

  get size(): number {
    return this.joined.size;
  }

  get pendingSize(): number {
    return this.pending.size;
  }

  has(client: string): boolean {
    return this.joined.has(client);
  }

  /** A client asks to join: the service decides (a member is answered at once). */
  join(client: string, user: string | null, reply: JoinReply, data: unknown, gateway?: string): void {
    this.out.route(client, gateway);
    if (this.joined.has(client)) return this.answer(reply, true, undefined);
    this.pending.set(client, { user, reply });
    this.out.toService({ type: "join", client, user, data: data ?? null });
  }

  /** A client left (or its session ended): the service hears it if it was joined or joining. */
  leave(client: string, reason: LeaveReason): void {
    if (this.joined.delete(client) || this.pending.delete(client)) {
      this.out.toService({ type: "leave", client, reason });
      this.out.changed();
    }
  }

  accept(client: string): void {
    if (this.rejoining.delete(client)) return;
    const pending = this.pending.get(client);
    if (!pending) return;
    this.pending.delete(client);
    this.joined.set(client, pending.user);
    this.out.changed();
    this.answer(pending.reply, true, undefined);
  }

  private answer(reply: JoinReply, joined: boolean, reason: string | undefined): void {
    if (typeof reply === "function") return reply(joined, reason);
    this.out.toJoinReply(reply, joined ? { type: "joined", instance: this.instance } : { type: "join_rejected", instance: this.instance, reason: reason ?? "refused by the service" });
  }

  /** The join of `client` is still waiting for the service's answer. */
  isPending(client: string): boolean {
    return this.pending.has(client);
  }

  reject(client: string, reason: string | undefined): void {
    if (this.rejoining.delete(client)) {
      // The restarted service would not take this member back.
      if (this.joined.delete(client)) this.closed(client, "kicked");
      return;
    }
    const pending = this.pending.get(client);
    if (!pending) return;
    this.pending.delete(client);
    this.out.forget(client);
    this.answer(pending.reply, false, reason ?? "refused by the service");
  }

  kick(client: string): void {
    if (!this.joined.delete(client)) return;
    this.out.toService({ type: "leave", client, reason: "kicked" });
    this.closed(client, "kicked");
    this.out.changed();
  }

  private closed(client: string, reason: "kicked"): void {
    this.out.deliver(client, JSON.stringify({ type: "closed", instance: this.instance, reason } satisfies ToSession));
    // Its route stays: a gateway that could not deliver this `closed` names the client back, and
    // only a client with a route (or kept events) is kept for. One small entry per kicked client
    // lives until the instance ends (noted in docs/architecture.md#fan-out-by-gateway).
  }

  /** A service `send`: to `to` (those of them that are members), or to every member. */
  send(payload: string, to: readonly string[] | undefined): void {
    const clients = to === undefined ? [...this.joined.keys()] : to.filter((client) => this.joined.has(client));
    if (clients.length > 0) this.out.send(payload, clients);
  }

  /** An event for every member. */
  broadcast(event: ToSession): void {
    this.send(JSON.stringify(event), undefined);
  }

  /** The process ended and will start again: answers to old joins no longer count. */
  forgetRejoins(): void {
    this.rejoining.clear();
  }

  /** The restarted process is ready: it is told every member's join again. */
  rejoin(): void {
    for (const [client, user] of this.joined) {
      this.rejoining.add(client);
      this.out.toService({ type: "join", client, user, data: null });
    }
  }

  /** The instance is over: members get `closed`, pending joiners `join_rejected`. */
  end(reason: ClosedReason): void {
    this.broadcast({ type: "closed", instance: this.instance, reason });
    for (const { reply } of this.pending.values()) this.answer(reply, false, `instance ${reason}`);
    this.pending.clear();
    this.joined.clear();
  }
}
