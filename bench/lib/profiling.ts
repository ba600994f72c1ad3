/**
 * Optional CPU profiles of the measured processes: with BENCH_PROFILE=1, Servman and the floors
 * run with `--cpu-prof`, each writing a .cpuprofile under bench/results/profiles/<bench>-<label>/
 * when it exits, for `node dist/bench/profile-top.js` (or Chrome DevTools) to show where time went.
 * Off by default: profiling slows the profiled process down.
 */
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import { RESULTS_DIR } from "./paths.js";

/** True when BENCH_PROFILE asks for profiles. */
export function profiling(): boolean {
  return process.env.BENCH_PROFILE === "1";
}

/** Node flags for a measured process named `label` (none unless profiling). */
export function profileFlags(label: string): string[] {
  if (!profiling()) return [];
  const bench = basename(process.argv[1] ?? "bench", ".js");
  const dir = join(RESULTS_DIR, "profiles", `${bench}-${label}`.replaceAll(/[^A-Za-z0-9_.-]/g, "-"));
  mkdirSync(dir, { recursive: true });
  return ["--cpu-prof", `--cpu-prof-dir=${dir}`];
}
