/** A node's default id, when the configuration names none. */
import { hostname } from "node:os";
import { customAlphabet } from "nanoid";

const randomSuffix = customAlphabet("abcdefghijklmnopqrstuvwxyz0123456789", 6);

/** The host name (reduced to the id alphabet) and a random suffix. */
export function defaultNodeId(): string {
  const host =
    hostname()
      .replaceAll(/[^A-Za-z0-9_.-]/g, "-")
      .replace(/^[^A-Za-z0-9]+/, "")
      .slice(0, 48) || "node";
  return `${host}-${randomSuffix()}`;
}
