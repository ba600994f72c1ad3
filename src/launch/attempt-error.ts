/**
 * The messages of a launch that failed after more than one attempt (a task's `attempts`): the
 * code is the last attempt's, and the message says how many attempts were made, and where.
 */
import { isErrorCode, ServmanError, type ErrorCode } from "../errors.js";

/** `code: message`, as a failed attempt is kept in its registry record (`lastError`). */
export function storedError(code: ErrorCode, message: string): string {
  return `${code}: ${message}`;
}

/** "1 attempt", "3 attempts". */
function attemptsText(n: number): string {
  return `${n} attempt${n === 1 ? "" : "s"}`;
}

/** The final error of a launch whose last attempt (of `nodes.length`, on those nodes) failed with `code`. */
export function lastAttemptError(code: ErrorCode, message: string, nodes: readonly string[]): ServmanError {
  return new ServmanError(code, `${message} (gave up after ${attemptsText(nodes.length)}, on ${nodes.join(", ")})`);
}

/**
 * The error of a launch that was to be tried again, when no node took the next attempt before
 * `retryBy`: the last failure (`lastError` as stored), after `tries` attempts.
 */
export function abandonedRetryError(lastError: string, tries: number): ServmanError {
  const at = lastError.indexOf(": ");
  const code = at > 0 && isErrorCode(lastError.slice(0, at)) ? (lastError.slice(0, at) as ErrorCode) : "launch_failed";
  const message = at > 0 ? lastError.slice(at + 2) : lastError;
  return new ServmanError(code, `${message} (gave up after ${attemptsText(tries)}: no node took the next one in time)`);
}
