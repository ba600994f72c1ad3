/**
 * The gateway's HTTP side (SPEC §5): health, metrics and the admin API. Errors are JSON
 * `{"error":{"code","message"}}` with a status derived from the error code.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { Type } from "@sinclair/typebox";
import type { Logger } from "pino";
import { mintTicket, type TicketGrant } from "../src/auth/tickets.js";
import { ServmanError, toServmanError, type ErrorCode } from "../src/errors.js";
import type { Requester } from "../src/launch/requester.js";
import { NAME_PATTERN } from "../src/names.js";
import type { PostMortem } from "../src/registry/instance-logs.js";
import { LaunchOptionsSchema } from "../src/protocol/client-messages.js";
import { compile } from "../src/protocol/validate.js";
import type { GatewayMetrics } from "./metrics.js";

/** HTTP status of each error code. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
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
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "content-length": Buffer.byteLength(text) });
  res.end(text);
}

function readJson(req: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = () => new ServmanError("too_large", `request body over ${MAX_BODY_BYTES} bytes`);
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) {
      // Discard the body (the reply closes the connection) rather than reset the socket mid-upload.
      req.resume();
      return reject(tooLarge());
    }
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
function readJsonBody(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\s*(;|$)/i.test(req.headers["content-type"] ?? "")) {
    req.resume();
    return Promise.reject(new ServmanError("bad_request", "send the body as JSON with content-type: application/json"));
  }
  return readJson(req);
}

const validateTicketBody = compile(
  Type.Object({
    sub: Type.String({ minLength: 1, maxLength: 256 }),
    instances: Type.Optional(Type.Array(Type.String({ pattern: NAME_PATTERN.source }))),
    tasks: Type.Optional(Type.Array(Type.String({ pattern: NAME_PATTERN.source }))),
    admin: Type.Optional(Type.Boolean()),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 24 * 3600 })),
  }, { additionalProperties: false }),
);

/** Handles one HTTP request. Never throws. */
export async function handleHttp(ctx: HttpApiContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://gateway");
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
      const body = await readJsonBody(req);
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
        id = decodeURIComponent(match[1]!);
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
      const body = await readJsonBody(req);
      const problem = validateTicketBody.explain(body);
      if (problem !== null) throw new ServmanError("bad_request", problem);
      return json(res, 201, await mintTicket(ctx.secret, body as TicketGrant));
    }
    throw new ServmanError("unknown_type", `no route ${method} ${path}`);
  } catch (err) {
    const e = toServmanError(err);
    if (e.code === "internal") ctx.logger.error({ err: e.message, path }, "admin API internal error");
    const status = e.code === "unknown_type" ? 404 : HTTP_STATUS[e.code];
    if (e.code === "too_large") res.setHeader("connection", "close");
    if (e.code === "unauthorized") res.setHeader("www-authenticate", 'Bearer realm="servman admin"');
    if (!res.headersSent) json(res, status, { error: { code: e.code, message: e.message } });
    else res.end();
  }
}
