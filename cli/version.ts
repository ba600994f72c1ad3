/** The installed package's version, read from its package.json (no configuration involved). */
import { readFileSync } from "node:fs";

/** The `version` of servman's package.json: two folders up from dist/cli/ (or from cli/ in the sources). */
export function packageVersion(): string {
  const file = new URL("../../package.json", import.meta.url);
  const version = (JSON.parse(readFileSync(file, "utf8")) as { version?: unknown }).version;
  return typeof version === "string" ? version : "unknown";
}
