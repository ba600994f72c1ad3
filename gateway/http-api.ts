/**
 * The gateway's HTTP side (docs/http-api.md): health, metrics and the admin API. Errors are JSON
 * `{"error":{"code","message"}}` with a status derived from the error code.
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from "node:http";
import { Type } from "@sinclair/typebox";
import type { Logger } from "pino";
import { MAX_TICKET_TTL_SECONDS, mintTicket, type TicketGrant } from "../src/auth/tickets.js";
import { ServmanError, toServmanError, type ErrorCode } from "../src/errors.js";
import type { Requester } from "../src/launch/requester.js";
import { NAME_PATTERN } from "../src/names.js";
import type { PostMortem } from "../src/registry/instance-logs.js";
import { LaunchOptionsSchema } from "../src/protocol/client-messages.js";
import { jsonTextTooDeep } from "../src/protocol/json-depth.js";
import { compile } from "../src/protocol/validate.js";
import type { GatewayMetrics } from "./metrics.js";

/** HTTP status of each error code. */
const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  bad_request: 400,
  unknown_type: 400,
  unknown_task: 404,
  unknown_instance: 404,
  not_joined: 409,
  already_exists: 409,
  join_rejected: 403,
  forbidden: 403,
  unauthorized: 401,
  rate_limited: 429,
  too_large: 413,
  no_capacity: 503,
  launch_failed: 502,
  timeout: 504,
  unavailable: 503,
  internal: 500,
};

const MAX_BODY_BYTES = 1024 * 1024;

const validateLaunchBody = compile(
  Type.Object({
    task: Type.String({ pattern: NAME_PATTERN.source }),
    args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    instance: Type.Optional(Type.String({ pattern: NAME_PATTERN.source })),
    options: Type.Optional(LaunchOptionsSchema),
  }),
);

export interface HttpApiContext {
  readonly requester: Requester;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Why the gateway is not serving, or null when it is (for /healthz). */
  unhealthy(): string | null;
  /** Throws `unauthorized` unless the request may use the admin API. */
  authorizeAdmin(req: IncomingMessage): void;
  /** The ticket secret, when tickets are configured. */
  readonly secret: string | undefined;
  /** How an ended instance ended, while that is kept. */
  postMortem(id: string): Promise<PostMortem | null>;
  /** Deepest JSON nesting of a body (gateway.limits.maxDepth). */
  readonly maxDepth: number;
  /** Why the request's `Host` is not served here, or null when it is (docs/security.md#host-and-origin-checks). */
  refusedHost(req: IncomingMessage): string | null;
}

/**
 * The path and query of an origin-form request target (`/path?query`), or null for anything
 * else: `//host/...`, absolute or asterisk forms, and paths a URL parser would read as a host
 * (`/\\host`). Those get 400, never a route picked by how the parser resolved them.
 */
export function requestTarget(raw: string | undefined): URL | null {
  if (raw === undefined || !raw.startsWith("/") || raw.startsWith("//")) return null;
  try {
    const url = new URL(raw, "http://gateway");
    return url.host === "gateway" ? url : null;
  } catch {
    return null;
  }
}

/** A whole HTTP error response as text, for a socket no ServerResponse wraps (an upgrade). */
export function rawErrorResponse(status: number, code: ErrorCode, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ""}\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readJson(req: IncomingMessage, maxDepth: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => new ServmanError("too_large", `request body over ${MAX_BODY_BYTES} bytes`);
    // The reply to an unread body closes the connection, so the body is never read to its end.
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return reject(tooLarge());
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
      else if (chunks.length > 0) {
        chunks.length = 0;
        reject(tooLarge());
      }
    });
    req.on("end", () => {
      if (size > MAX_BODY_BYTES) return;
      const text = Buffer.concat(chunks).toString("utf8");
      // Checked before parsing: whatever walks the parsed value later (validation, JSON.stringify) may recurse.
      if (jsonTextTooDeep(text, maxDepth)) return reject(new ServmanError("bad_request", `request body nests deeper than ${maxDepth} levels`));
      try {
        resolve(text === "" ? {} : JSON.parse(text));
      } catch {
        reject(new ServmanError("bad_request", "request body is not valid JSON"));
      }
    });
    req.on("error", reject);
  });
}

/** Reads a JSON body; requiring the JSON content type keeps out "simple" cross-site form posts. */
function readJsonBody(req: IncomingMessage, maxDepth: number): Promise<unknown> {
  if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
    return Promise.reject(new ServmanError("bad_request", "send the body as JSON with content-type: application/json"));
  }
  return readJson(req, maxDepth);
}

const validateTicketBody = compile(
  Type.Object(
    {
      sub: Type.String({ minLength: 1, maxLength: 256 }),
      instances: Type.Optional(Type.Array(Type.String({ pattern: NAME_PATTERN.source }))),
      tasks: Type.Optional(Type.Array(Type.String({ pattern: NAME_PATTERN.source }))),
      admin: Type.Optional(Type.Boolean()),
      ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TICKET_TTL_SECONDS })),
    },
    { additionalProperties: false },
  ),
);

/**
 * Sends an error. A request whose body has not been read is answered with `connection: close`,
 * so Node closes the socket after the reply instead of reading the rest of the body to keep the
 * connection alive (an unauthenticated upload would be read to its end).
 */
function sendError(req: IncomingMessage, res: ServerResponse, status: number, code: ErrorCode, message: string): void {
  if (res.headersSent) return void res.end();
  const hasBody = req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
  if (hasBody && !req.complete) res.setHeader("connection", "close");
  json(res, status, { error: { code, message } });
}

/** Handles one HTTP request. Rejects only on a bug; the gateway answers 500 then. */
export async function handleHttp(ctx: HttpApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = requestTarget(req.url);
  if (url === null) return sendError(req, res, 400, "bad_request", "the request target must be a path");
  const refused = ctx.refusedHost(req);
  if (refused !== null) return sendError(req, res, 421, "bad_request", refused);
  const path = url.pathname;
  const method = req.method ?? "GET";
  try {
    if (path === "/healthz" && method === "GET") {
      const problem = ctx.unhealthy();
      return json(res, problem === null ? 200 : 503, problem === null ? { status: "ok" } : { status: "unavailable", reason: problem });
    }
    if (path === "/metrics" && method === "GET") {
      const text = await ctx.metrics.registry.metrics();
      res.writeHead(200, { "content-type": ctx.metrics.registry.contentType });
      return void res.end(text);
    }
    if (!path.startsWith("/v1/")) throw new ServmanError("unknown_type", `no route ${method} ${path}`);
    ctx.authorizeAdmin(req);
    const { requester } = ctx;
    if (path === "/v1/nodes" && method === "GET") return json(res, 200, { nodes: await requester.nodes.list() });
    if (path === "/v1/instances" && method === "GET") return json(res, 200, { instances: await requester.instances.list() });
    if (path === "/v1/instances" && method === "POST") {
      const body = await readJsonBody(req, ctx.maxDepth);
      const problem = validateLaunchBody.explain(body);
      if (problem !== null) throw new ServmanError("bad_request", problem);
      const b = body as { task: string; args?: Record<string, unknown>; instance?: string; options?: Record<string, unknown> };
      try {
        const result = await requester.launch({ task: b.task, args: b.args ?? {}, ...(b.instance ? { instance: b.instance } : {}), options: b.options ?? {} });
        ctx.metrics.launches.inc({ result: "ok" });
        return json(res, 201, result);
      } catch (err) {
        ctx.metrics.launches.inc({ result: toServmanError(err).code });
        throw err;
      }
    }
    const match = /^\/v1\/instances\/([^/]+)$/.exec(path);
    if (match) {
      let id = "";
      try {
        id = decodeURIComponent(match[1]);
      } catch {
        // A malformed %-escape is the client's mistake: the check below answers bad_request.
      }
      if (!NAME_PATTERN.test(id)) throw new ServmanError("bad_request", "instance id is not valid");
      if (method === "GET") {
        const record = await requester.instances.get(id);
        if (record) return json(res, 200, record);
        // Not live: still 404, with how it ended when that is known (kept for an hour).
        const postMortem = await ctx.postMortem(id);
        return json(res, 404, { error: { code: "unknown_instance", message: `no live instance ${JSON.stringify(id)}` }, ...(postMortem ? { postMortem } : {}) });
      }
      if (method === "DELETE") {
        await requester.stop(id, null);
        return json(res, 200, { instance: id, stopped: true });
      }
    }
    if (path === "/v1/tickets" && method === "POST") {
      if (ctx.secret === undefined) throw new ServmanError("unavailable", "tickets need auth.secret in the configuration");
      const body = await readJsonBody(req, ctx.maxDepth);
      const problem = validateTicketBody.explain(body);
      if (problem !== null) throw new ServmanError("bad_request", problem);
      return json(res, 201, await mintTicket(ctx.secret, body as TicketGrant));
    }
    throw new ServmanError("unknown_type", `no route ${method} ${path}`);
  } catch (err) {
    const e = toServmanError(err);
    if (e.code === "internal") ctx.logger.error({ err, path }, "admin API internal error");
    const status = e.code === "unknown_type" ? 404 : HTTP_STATUS[e.code];
    if (e.code === "unauthorized" && !res.headersSent) res.setHeader("www-authenticate", 'Bearer realm="servman admin"');
    sendError(req, res, status, e.code, e.message);
  }
}
