/**
 * Which `Host` and `Origin` headers a gateway answers (docs/security.md#host-and-origin-checks).
 * A DNS-rebinding page points its own name at the gateway's address: the browser then sends that
 * name as `Host`, and, for a WebSocket, the page's origin as `Origin`. Answering only the
 * gateway's own names keeps such pages away from the admin API and the WebSocket.
 */
import type { IncomingMessage } from "node:http";
import { isIP } from "node:net";
import { networkInterfaces } from "node:os";
import type { GatewayConfig } from "../src/config/options.js";
import { rawErrorResponse, requestTarget } from "./http-api.js";

/** Interface addresses are read again at most this often (they change with DHCP, VPNs). */
const INTERFACES_TTL_MS = 5_000;

/**
 * The host name of a `Host` header or URL host: port removed, IPv6 brackets removed, lowercased,
 * without a trailing dot. Null when there is nothing.
 */
function hostName(value: string | undefined): string | null {
  if (value === undefined) return null;
  let host = value.trim().toLowerCase();
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    host = end < 0 ? host.slice(1) : host.slice(1, end);
  } else if (host.indexOf(":") === host.lastIndexOf(":")) {
    // One colon: name:port. More: a bare IPv6 address (not valid in Host, but unambiguous).
    const colon = host.indexOf(":");
    if (colon >= 0) host = host.slice(0, colon);
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  return host === "" ? null : host;
}

/** True for names only this machine answers: `localhost`, 127.0.0.0/8, ::1. */
function isLoopbackName(host: string): boolean {
  if (host === "localhost" || host === "::1" || host === "0:0:0:0:0:0:0:1") return true;
  const v4 = host.startsWith("::ffff:") ? host.slice(7) : host;
  return isIP(v4) === 4 && v4.startsWith("127.");
}

function isWildcard(host: string): boolean {
  return host === "0.0.0.0" || host === "::" || host === "" || host === "0:0:0:0:0:0:0:0";
}

export class HostCheck {
  private readonly anyHost: boolean;
  private readonly hosts: ReadonlySet<string>;
  private readonly anyOrigin: boolean;
  private readonly origins: ReadonlySet<string>;
  private readonly bound: string;
  private interfaces = { at: 0, addresses: new Set<string>() };

  /** @param boundAddress the address the server listens on, once it does */
  constructor(
    config: Pick<GatewayConfig, "host" | "allowedHosts" | "allowedOrigins">,
    private readonly boundAddress: () => string | undefined,
  ) {
    this.anyHost = config.allowedHosts.includes("*");
    this.hosts = new Set(config.allowedHosts.map((h) => hostName(h)).filter((h): h is string => h !== null));
    this.anyOrigin = config.allowedOrigins.includes("*");
    this.origins = new Set(config.allowedOrigins.map(normalizeOrigin));
    this.bound = hostName(config.host) ?? "";
  }

  /** True when a request or upgrade with this `Host` header is served. */
  hostAllowed(header: string | undefined): boolean {
    // Browsers always send Host, so its absence (HTTP/1.0 health checkers) is no rebinding page.
    if (this.anyHost || header === undefined) return true;
    const host = hostName(header);
    if (host === null) return false;
    if (isLoopbackName(host) || this.hosts.has(host) || host === this.bound) return true;
    const actual = hostName(this.boundAddress());
    if (actual !== null && host === actual) return true;
    // Bound to every interface: each of the machine's own addresses is its own name too.
    return (isWildcard(this.bound) || (actual !== null && isWildcard(actual))) && this.interfaceAddresses().has(host);
  }

  /** Why a request with this `Host` header is not served (421), or null when it is. */
  hostRefusal(header: string | undefined): string | null {
    if (this.hostAllowed(header)) return null;
    return `this gateway does not answer to the host ${JSON.stringify(header ?? "")}; list it in gateway.allowedHosts`;
  }

  /** True when an upgrade with this `Origin` (absent for non-browser clients) is accepted. */
  originAllowed(origin: string | undefined): boolean {
    if (origin === undefined || this.anyOrigin || this.origins.has(normalizeOrigin(origin))) return true;
    let host: string;
    try {
      host = new URL(origin).host;
    } catch {
      return false; // "null" (a sandboxed or file: page), unless listed above
    }
    return host !== "" && this.hostAllowed(host);
  }

  private interfaceAddresses(): ReadonlySet<string> {
    const now = Date.now();
    if (now - this.interfaces.at >= INTERFACES_TTL_MS) {
      const addresses = new Set<string>();
      for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) addresses.add(a.address.toLowerCase().replace(/%.*$/, ""));
      this.interfaces = { at: now, addresses };
    }
    return this.interfaces.addresses;
  }
}

function normalizeOrigin(origin: string): string {
  return origin.trim().toLowerCase().replace(/\/+$/, "");
}

/**
 * The HTTP response refusing a WebSocket upgrade before any handshake (a target that is not a
 * path: 400, another path: 404, draining: 503, a foreign Host: 421, a foreign Origin: 403), or
 * null to go on.
 */
export function upgradeRefusal(req: IncomingMessage, at: { path: string; draining: boolean; hostCheck: HostCheck }): string | null {
  const url = requestTarget(req.url);
  if (url === null) return rawErrorResponse(400, "bad_request", "the request target must be a path");
  if (url.pathname !== at.path) return rawErrorResponse(404, "unknown_type", `no WebSocket endpoint at ${url.pathname}`);
  if (at.draining) return rawErrorResponse(503, "unavailable", "gateway is draining");
  const host = at.hostCheck.hostRefusal(req.headers.host);
  if (host !== null) return rawErrorResponse(421, "bad_request", host);
  const origin = req.headers.origin;
  if (!at.hostCheck.originAllowed(origin)) return rawErrorResponse(403, "forbidden", `pages from ${JSON.stringify(origin)} may not connect; list the origin in gateway.allowedOrigins`);
  return null;
}
