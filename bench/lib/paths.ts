/**
 * Where things are, from the compiled benchmarks' point of view (they run from dist/bench/).
 * Every path is absolute so child processes can be started from any working directory.
 */
import { fileURLToPath } from "node:url";
import { join } from "node:path";

/** The repository root (this file runs as dist/bench/lib/paths.js). */
export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
/** The `servman` program, as users run it. */
export const CLI = join(ROOT, "bin/servman.js");
/** Compiled benchmark scripts. */
export const BENCH_DIST = join(ROOT, "dist/bench");
/** Where each benchmark writes `<name>.json` (git ignores it). */
export const RESULTS_DIR = join(ROOT, "bench/results");
/** The Servman echo service (a `module` task built on the service SDK). */
export const ECHO_SERVICE = join(BENCH_DIST, "services/echo-service.js");
/** The floor's echo child: raw `process.on("message")` / `process.send`, no Servman code. */
export const RAW_ECHO_CHILD = join(BENCH_DIST, "services/raw-echo-child.js");

/** The compiled file of a server script under bench/servers/. */
export function serverScript(name: string): string {
  return join(BENCH_DIST, "servers", `${name}.js`);
}

/** The compiled file of one benchmark (bench/<name>.ts). */
export function benchmarkScript(name: string): string {
  return join(BENCH_DIST, `${name}.js`);
}
