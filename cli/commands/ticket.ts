/** `servman ticket SUB`: mints a client ticket with the configuration's auth.secret. */
import { mintTicket } from "../../src/auth/tickets.js";
import type { ServmanConfig } from "../../src/config/options.js";
import { ConfigError } from "../../src/errors.js";
import { UsageError, intFlag, type ParsedCommand } from "../cli-options.js";

function list(value: string | boolean | undefined): string[] | undefined {
  if (typeof value !== "string") return undefined;
  return value
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

export async function ticket(cmd: ParsedCommand, config: ServmanConfig, out: NodeJS.WritableStream): Promise<number> {
  if (cmd.positionals.length !== 1) throw new UsageError("ticket takes the user id: servman ticket SUB [--tasks a,b] [--instances x,y] [--admin] [--ttl SECONDS]");
  const secret = config.auth.secret;
  if (secret === undefined) throw new ConfigError(config.file, "auth.secret", "minting tickets needs auth.secret in the configuration");
  const tasks = list(cmd.values.tasks);
  const instances = list(cmd.values.instances);
  const ttlSeconds = intFlag(cmd.values, "ttl", 1);
  const result = await mintTicket(secret, {
    sub: cmd.positionals[0],
    ...(tasks ? { tasks } : {}),
    ...(instances ? { instances } : {}),
    ...(cmd.values.admin === true ? { admin: true } : {}),
    ...(ttlSeconds !== undefined ? { ttlSeconds } : {}),
  });
  out.write(cmd.values.json ? JSON.stringify(result) + "\n" : result.ticket + "\n");
  return 0;
}
