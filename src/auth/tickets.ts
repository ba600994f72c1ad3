/**
 * Tickets (docs/protocol.md#tickets): HS256 JWTs signed with the deployment's auth secret, so any backend language
 * can mint one. Minted by the Launcher, `POST /v1/tickets` and `servman ticket`; verified by
 * gateways. jose does the JWT work: a hand-written JWT verifier is a classic source of holes.
 */
import { Type, type Static } from "@sinclair/typebox";
import { SignJWT, errors as joseErrors, jwtVerify } from "jose";
import { ServmanError } from "../errors.js";
import { NAME_PATTERN } from "../names.js";
import { compile } from "../protocol/validate.js";

/** The claims Servman reads from a ticket. */
export const TicketClaimsSchema = Type.Object({
  /** The user id (allow/deny lists and owner rules use it). */
  sub: Type.String({ minLength: 1, maxLength: 256 }),
  /** Expiry, seconds since epoch (required). */
  exp: Type.Integer(),
  /** Instance ids the user may join; absent: any. */
  instances: Type.Optional(Type.Array(Type.String({ pattern: NAME_PATTERN.source }), { maxItems: 10_000 })),
  /** Tasks the user may launch; absent: none. */
  tasks: Type.Optional(Type.Array(Type.String({ pattern: NAME_PATTERN.source }), { maxItems: 10_000 })),
  /** Admins may stop any instance, launch any task and join any instance. */
  admin: Type.Optional(Type.Boolean()),
});
export type TicketClaims = Static<typeof TicketClaimsSchema>;

const validateClaims = compile(TicketClaimsSchema);

/**
 * The claims' first problem beyond the schema, or null. A lone surrogate in `sub` is valid JSON
 * but not text: it cannot be encoded as UTF-8 or into a Redis key, so it is refused up front.
 */
function explainClaims(claims: unknown): string | null {
  const problem = validateClaims.explain(claims);
  if (problem !== null) return problem;
  return /\p{Surrogate}/u.test((claims as TicketClaims).sub) ? "field sub: must be well-formed Unicode (it has a lone surrogate)" : null;
}

/** What a minted ticket grants. */
export interface TicketGrant {
  /** User id. */
  sub: string;
  instances?: string[];
  tasks?: string[];
  admin?: boolean;
  /** Lifetime in seconds. Default 3600. */
  ttlSeconds?: number;
}

/** Default ticket lifetime. */
const DEFAULT_TICKET_TTL_SECONDS = 3600;
/** The longest ticket lifetime a minter accepts: 366 days (docs/security.md). */
export const MAX_TICKET_TTL_SECONDS = 366 * 24 * 3600;

/** A tickets secret must be long enough that guessing it is hopeless. */
const MIN_SECRET_LENGTH = 16;

function key(secret: string): Uint8Array {
  if (secret.length < MIN_SECRET_LENGTH) throw new ServmanError("bad_request", `the auth secret must be at least ${MIN_SECRET_LENGTH} characters`);
  return new TextEncoder().encode(secret);
}

/** Signs a ticket. Returns the JWT and when it expires (seconds since epoch). */
export async function mintTicket(secret: string, grant: TicketGrant): Promise<{ ticket: string; exp: number }> {
  const ttl = grant.ttlSeconds ?? DEFAULT_TICKET_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > MAX_TICKET_TTL_SECONDS) throw new ServmanError("bad_request", `ttlSeconds must be an integer from 1 to ${MAX_TICKET_TTL_SECONDS}`);
  const exp = Math.floor(Date.now() / 1000) + ttl;
  const claims: Record<string, unknown> = {};
  if (grant.instances !== undefined) claims.instances = grant.instances;
  if (grant.tasks !== undefined) claims.tasks = grant.tasks;
  if (grant.admin !== undefined) claims.admin = grant.admin;
  const problem = explainClaims({ ...claims, sub: grant.sub, exp });
  if (problem !== null) throw new ServmanError("bad_request", `ticket ${problem}`);
  const ticket = await new SignJWT(claims).setProtectedHeader({ alg: "HS256", typ: "JWT" }).setSubject(grant.sub).setExpirationTime(exp).setIssuedAt().sign(key(secret));
  return { ticket, exp };
}

/**
 * Verifies a ticket and returns its claims. Throws `unauthorized` for a forged, malformed or
 * expired ticket, saying which (never echoing the ticket).
 */
export async function verifyTicket(secret: string, ticket: string): Promise<TicketClaims> {
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(ticket, key(secret), { algorithms: ["HS256"], requiredClaims: ["exp", "sub"] }));
  } catch (err) {
    const why =
      err instanceof joseErrors.JWTExpired
        ? "ticket expired"
        : err instanceof joseErrors.JWSSignatureVerificationFailed
          ? "ticket signature is not valid"
          : err instanceof joseErrors.JWTClaimValidationFailed
            ? `ticket claim ${err.claim} is missing or invalid`
            : "ticket is not a valid HS256 JWT";
    throw new ServmanError("unauthorized", why, { cause: err });
  }
  const problem = explainClaims(payload);
  if (problem !== null) throw new ServmanError("unauthorized", `ticket ${problem}`);
  return payload as TicketClaims;
}
