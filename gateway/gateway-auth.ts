/**
 * Who a connection or an admin request is: tickets for client connections, admin tokens for the
 * admin API (docs/protocol.md#tickets, docs/http-api.md#admin-api). Without an auth section the gateway runs open.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import { verifyTicket } from "../src/auth/tickets.js";
import type { AuthConfig } from "../src/config/options.js";
import { ServmanError } from "../src/errors.js";
import { isLoopback } from "./servable.js";

/** What a connection may do. */
export interface Identity {
  /** The ticket's `sub`; null in open mode. */
  readonly user: string | null;
  readonly admin: boolean;
  /** Instances it may join; null: any. */
  readonly instances: ReadonlySet<string> | null;
  /** Tasks it may launch; null: any. */
  readonly tasks: ReadonlySet<string> | null;
  /** When the ticket expires (ms since epoch); null in open mode. */
  readonly expiresAt: number | null;
}

/** Open mode (no auth configured): no user, every task may be launched, any instance joined. */
export const OPEN_IDENTITY: Identity = Object.freeze({ user: null, admin: false, instances: null, tasks: null, expiresAt: null });

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/** The ticket a connection presents: `?ticket=` or `Authorization: Bearer`. */
function presentedTicket(req: IncomingMessage): string | null {
  const header = req.headers.authorization;
  if (header !== undefined && /^Bearer\s+/i.test(header)) return header.replace(/^Bearer\s+/i, "").trim();
  const query = new URL(req.url ?? "/", "http://gateway").searchParams.get("ticket");
  return query === null || query === "" ? null : query;
}

export class GatewayAuth {
  private readonly secret: string | undefined;
  /** Digests of the admin tokens: compared in constant time, and the tokens are not kept. */
  private readonly adminDigests: Buffer[];

  /** Why the admin API is off, or null when it is served. */
  readonly adminOff: string | null;

  /** @param host the address the gateway binds (gateway.host) */
  constructor(auth: AuthConfig, host: string) {
    this.secret = auth.secret;
    this.adminDigests = auth.adminTokens.map(digest);
    // Reachable from other machines with no token to check: the admin API would be anyone's.
    this.adminOff =
      !isLoopback(host) && auth.adminTokens.length === 0 ? `the admin API is off: this gateway listens on ${host} and has no auth.adminTokens; configure auth.adminTokens to use it` : null;
  }

  /** True when no secret is configured: connections need no ticket. */
  get open(): boolean {
    return this.secret === undefined;
  }

  /** Checks the ticket of a connecting client. Throws `unauthorized` (the gateway closes with 1008). */
  async identify(req: IncomingMessage): Promise<Identity> {
    if (this.secret === undefined) return OPEN_IDENTITY;
    const ticket = presentedTicket(req);
    if (ticket === null) throw new ServmanError("unauthorized", "a ticket is required: ?ticket=... or Authorization: Bearer ...");
    const claims = await verifyTicket(this.secret, ticket);
    return Object.freeze({
      user: claims.sub,
      admin: claims.admin === true,
      instances: claims.instances === undefined ? null : new Set(claims.instances),
      tasks: new Set(claims.tasks ?? []),
      expiresAt: claims.exp * 1000,
    });
  }

  /**
   * Throws `unauthorized` unless the request carries one of the admin tokens. Open mode (no auth
   * section at all) on a loopback address needs none; on any other address without admin tokens
   * the admin API is off (`forbidden`). Every token is compared, in constant time, whatever matches.
   */
  authorizeAdmin(req: IncomingMessage): void {
    if (this.adminOff !== null) throw new ServmanError("forbidden", this.adminOff);
    if (this.secret === undefined && this.adminDigests.length === 0) return;
    const header = req.headers.authorization ?? "";
    const given = /^Bearer\s+/i.test(header) ? digest(header.replace(/^Bearer\s+/i, "").trim()) : null;
    let ok = false;
    for (const expected of this.adminDigests) ok = (given !== null && timingSafeEqual(given, expected)) || ok;
    if (!ok) throw new ServmanError("unauthorized", given === null ? "the admin API needs Authorization: Bearer <admin token>" : "admin token not accepted");
  }
}
