/**
 * Names that end up inside Redis keys, channel names and BullMQ queue names. They are checked here,
 * once, before any of them reaches `keys.ts`: no `:` (our key separator), no spaces, no globs.
 */
import { ServmanError } from "./errors.js";

/** Task names, instance ids, node ids: 1 to 64 of `A-Z a-z 0-9 _ . -`, starting with a letter or digit. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** Key prefixes: the same alphabet plus `:` for nesting (`acme:servman`). */
export const PREFIX_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

/** True when `value` can be used as a task name, instance id or node id. */
export function isValidName(value: unknown): value is string {
  return typeof value === "string" && NAME_PATTERN.test(value);
}

/** Throws `bad_request` unless `value` is a valid name; `what` says which field it was. */
export function assertName(value: unknown, what: string): string {
  if (!isValidName(value)) {
    throw new ServmanError("bad_request", `${what} must be 1-64 characters of A-Z a-z 0-9 _ . - starting with a letter or digit`);
  }
  return value;
}
