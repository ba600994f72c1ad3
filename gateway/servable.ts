/** What a gateway checks before it serves: a safe bind address, and a usable certificate and key. */
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import type { ServmanConfig } from "../src/config/options.js";
import { ConfigError } from "../src/errors.js";

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === "localhost" || host === "::1" || host === "[::1]" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * Throws ConfigError when this version cannot serve `config` safely. Called before anything
 * starts, so `servman start` refuses before its node registers.
 */
export function assertServable(config: ServmanConfig): void {
  const { host, insecure } = config.gateway;
  if (config.gateway.tls) readTlsFiles(config.gateway.tls, config.file);
  if (!isLoopback(host) && config.auth.secret === undefined && !insecure) {
    // The host may come from the file, $SERVMAN_HOST or --host: name all three.
    throw new ConfigError(
      config.file,
      "gateway.host (or $SERVMAN_HOST, --host)",
      `refusing to listen on ${host}: with no auth.secret anyone who reaches it could launch and stop instances. ` +
        "Configure auth.secret (tickets; or $SERVMAN_AUTH_SECRET), bind 127.0.0.1, or pass --insecure if a proxy in front authenticates clients",
    );
  }
}

/** Reads a certificate and key, or throws a ConfigError naming the one that failed. */
export function readTlsFiles(tls: { cert: string; key: string }, file: string | null): { cert: Buffer; key: Buffer } {
  const read = (path: string, key: "cert" | "key") => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(file, `gateway.tls.${key}`, `cannot read ${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const files = { cert: read(tls.cert, "cert"), key: read(tls.key, "key") };
  try {
    createSecureContext(files);
  } catch (err) {
    throw new ConfigError(file, "gateway.tls", `the certificate and key cannot be used together: ${(err as Error).message}`, { cause: err });
  }
  return files;
}
