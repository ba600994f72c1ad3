/**
 * The one error class of Servman. Its `code` is stable and is the protocol's error code
 * (docs/protocol.md lists them all), so callers branch on `code`, never on `message`.
 */

/** Every error code Servman produces. Stable: clients and other backends branch on them. */
export const ERROR_CODES = [
  "bad_request",
  "unknown_type",
  "unknown_task",
  "unknown_instance",
  "not_joined",
  "already_exists",
  "join_rejected",
  "forbidden",
  "unauthorized",
  "rate_limited",
  "too_large",
  "no_capacity",
  "launch_failed",
  "timeout",
  "unavailable",
  "internal",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

const CODE_SET: ReadonlySet<string> = new Set(ERROR_CODES);

/** True when `code` is one of {@link ERROR_CODES}. */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === "string" && CODE_SET.has(code);
}

/** Base error: a stable `code`, a human message, and the underlying `cause` when there is one. */
export class ServmanError extends Error {
  override readonly name: string = "ServmanError";
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** The protocol's `error` frame for this error, echoing a request id when there was one. */
  toFrame(id?: string | number): { type: "error"; id?: string | number; code: ErrorCode; message: string } {
    return id === undefined ? { type: "error", code: this.code, message: this.message } : { type: "error", id, code: this.code, message: this.message };
  }
}

/**
 * A configuration that cannot be used. Programs exit with code 2 on it, so it has its own class:
 * the CLI branches on it. `file` and `path` name where the problem is.
 */
export class ConfigError extends ServmanError {
  override readonly name = "ConfigError";
  readonly file: string | null;
  readonly path: string;
  /** What is wrong, without the file and path (to say it again about another source). */
  readonly reason: string;

  constructor(file: string | null, path: string, message: string, options?: { cause?: unknown }) {
    const where = `${file ?? "configuration"}${path ? ` at ${path}` : ""}`;
    super("bad_request", `${where}: ${message}`, options);
    this.file = file;
    this.path = path;
    this.reason = message;
  }
}

/** What ioredis says when Redis cannot be reached or does not answer in time. */
const REDIS_UNREACHABLE = /Connection is closed|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|Command timed out|max retries|MaxRetriesPerRequest|Stream isn't writeable/i;

/**
 * Wraps anything thrown into a ServmanError, keeping ServmanErrors as they are. Redis being out
 * of reach is `unavailable` (try again), not `internal`.
 */
export function toServmanError(err: unknown, fallback: ErrorCode = "internal"): ServmanError {
  if (err instanceof ServmanError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (REDIS_UNREACHABLE.test(message)) return new ServmanError("unavailable", `Redis is unreachable (${message}); try again`, { cause: err });
  return new ServmanError(fallback, message, { cause: err });
}
