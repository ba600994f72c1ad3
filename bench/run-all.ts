/**
 * `npm run bench`: runs the benchmarks one after another, each in a process of its own (so one's
 * sockets, children and heap cannot skew the next, and a crash ends only that one), then prints a
 * summary with the ratios to the floors first and writes bench/results/summary.{json,md}.
 *
 *   node dist/bench/run-all.js                  all ten
 *   node dist/bench/run-all.js relay launch     a subset, in the order given
 *
 * Sizes: BENCH_CONNECTIONS, BENCH_INSTANCES, BENCH_HEARTBEAT and the others each benchmark names;
 * BENCH_TIMEOUT_S bounds each benchmark (default 900 s).
 */
import { spawn } from "node:child_process";
import { writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { envInt } from "./lib/env.js";
import { print, say } from "./lib/output.js";
import { benchmarkScript, RESULTS_DIR, ROOT } from "./lib/paths.js";
import { readResult, targetText, type BenchResult } from "./lib/results.js";
import { formatNumber, formatRatio, metText, renderTable } from "./lib/table.js";

const ALL = ["relay", "launch", "launch-warm", "connections", "density", "heartbeat", "stalled", "redis-cost", "slot-families", "relay-cluster", "failover", "peer"] as const;
const TIMEOUT_MS = envInt("BENCH_TIMEOUT_S", 900) * 1000;

const asked = process.argv.slice(2);
const unknown = asked.filter((name) => !(ALL as readonly string[]).includes(name));
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark${unknown.length > 1 ? "s" : ""}: ${unknown.join(", ")}; choose from ${ALL.join(", ")}\n`);
  process.exit(2);
}
const names = asked.length > 0 ? asked : [...ALL];

let current: ReturnType<typeof spawn> | undefined;
// Ctrl-C reaches the running benchmark too (same process group); it ends its own processes. A
// SIGTERM sent to us alone is passed on, so it can do the same.
process.on("SIGTERM", () => {
  if (current?.pid !== undefined) process.kill(current.pid, "SIGTERM");
  process.exitCode = 130;
});
process.on("SIGINT", () => {
  process.exitCode = 130;
});

/** Runs one benchmark script to completion (bounded by TIMEOUT_MS) and returns its exit code. */
function runOne(name: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [benchmarkScript(name)], { cwd: ROOT, stdio: "inherit" });
    current = child;
    const timer = setTimeout(() => {
      say(`${name} ran past ${TIMEOUT_MS / 1000} s: ending it`);
      process.kill(child.pid!, "SIGTERM");
      // Its own cleanup runs on SIGTERM; if that hangs, it is killed.
      setTimeout(() => child.exitCode === null && child.signalCode === null && process.kill(child.pid!, "SIGKILL"), 15_000).unref();
    }, TIMEOUT_MS);
    child.once("exit", (code) => {
      clearTimeout(timer);
      current = undefined;
      resolve(code);
    });
  });
}

const runStarted = new Date();
const outcomes: { name: string; code: number | null; result: BenchResult | null }[] = [];
for (const name of names) {
  if (process.exitCode === 130) break;
  print(`\n=== ${name} ===`);
  const code = await runOne(name);
  const result = readResult(name);
  // A result file older than this run is a previous run's: it must not be reported as this one's.
  const fresh = result !== null && new Date(result.startedAt) >= runStarted ? result : null;
  outcomes.push({ name, code, result: fresh });
}

const rows: string[][] = [];
for (const { name, code, result } of outcomes) {
  if (!result) {
    rows.push([name, `no result (exit ${code})`, "-", "-", "-", "", ""]);
    continue;
  }
  // Figures compared with a floor first (ratio, then the two figures), then Servman-only facts.
  const ordered = [...result.metrics.filter((m) => m.ratio !== null), ...result.metrics.filter((m) => m.ratio === null)];
  for (const m of ordered) {
    rows.push([name, `${m.label}${m.unit ? ` (${m.unit})` : ""}`, formatRatio(m.ratio), formatNumber(m.servman), formatNumber(m.floor), targetText(m.target), metText(m.met)]);
  }
  const failed = result.checks.filter((c) => !c.ok);
  rows.push([
    name,
    failed.length === 0 ? `all ${result.checks.length} checks passed` : `FAILED: ${failed.map((c) => `${c.label} (${c.detail})`).join("; ")}`,
    "",
    "",
    "",
    "",
    result.ok && failed.length === 0 ? "yes" : "NO",
  ]);
  if (!result.ok) rows.push([name, `error: ${(result.error ?? "").split("\n")[0]}`, "", "", "", "", "NO"]);
}
const headers = ["benchmark", "metric", "servman/floor", "servman", "floor", "target", "met"];
const table = renderTable(headers, rows);
const load = outcomes.map((o) => o.result?.machine.loadAtStart).filter((l) => l !== undefined);
const machine = outcomes.find((o) => o.result)?.result?.machine;
const header =
  `Servman benchmarks, ${runStarted.toISOString()}` +
  (machine ? ` on ${machine.cpus} x ${machine.cpuModel}, ${Math.round(machine.totalMemoryMb / 1024)} GiB, Node ${machine.node}` : "") +
  (load.length > 0 ? `; load average at the start of each: ${load.join(", ")}` : "");
print(`\n${header}\nservman/floor: < 1 is better for times and memory, > 1 is better for rates.\n`);
print(table);
mkdirSync(RESULTS_DIR, { recursive: true });
writeFileSync(join(RESULTS_DIR, "summary.md"), `${header}\n\n${table}`);
writeFileSync(
  join(RESULTS_DIR, "summary.json"),
  JSON.stringify(
    {
      startedAt: runStarted.toISOString(),
      benchmarks: outcomes.map((o) => ({ name: o.name, exitCode: o.code, ok: o.result?.ok ?? false, metrics: o.result?.metrics ?? [], checks: o.result?.checks ?? [] })),
    },
    null,
    2,
  ) + "\n",
);
print(`wrote ${join(RESULTS_DIR, "summary.md")} and summary.json`);
if (outcomes.some((o) => o.code !== 0)) process.exitCode = 1;
