/**
 * The root logger of a Servman program. Library classes never create one: they take it as an
 * option and bind child loggers (node, gateway, session, instance ids) from it.
 */
import { pino, type Logger } from "pino";

/** Log levels accepted by `--log-level` and `SERVMAN_LOG_LEVEL`. */
const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/** A pino logger writing JSON lines to stderr (stdout stays for command output). */
export function createLogger(level: string = process.env.SERVMAN_LOG_LEVEL ?? "info"): Logger {
  const chosen = (LOG_LEVELS as readonly string[]).includes(level) ? level : "info";
  return pino({ level: chosen, base: { pid: process.pid } }, pino.destination({ fd: 2, sync: false }));
}
