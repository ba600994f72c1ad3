/**
 * The frame every benchmark runs in: it collects figures as they are measured (so a failure
 * half-way still writes what was measured), checks that every process it started has ended,
 * writes bench/results/<name>.json and prints the table.
 */
import { finishMachineInfo, machineInfo } from "./machine.js";
import { print, say } from "./output.js";
import { stillTracked } from "./process-guard.js";
import { writeResult, type BenchResult, type Check, type Metric } from "./results.js";
import { METRIC_HEADERS, metricRows, renderTable } from "./table.js";

/** What a benchmark fills in while it runs. */
export interface BenchContext {
  params: Record<string, unknown>;
  metrics: Metric[];
  checks: Check[];
  servman: Record<string, unknown>;
  floor: Record<string, unknown>;
  notes: string[];
  /** Records a check and prints it. */
  check(label: string, ok: boolean, detail: string): void;
}

/**
 * Runs `body`, then writes and prints the result, then exits: 0 when it finished and every check
 * passed, 1 otherwise. Targets that are not met do not fail the run: they are what it reports.
 */
export async function runBenchmark(name: string, title: string, body: (ctx: BenchContext) => Promise<void>): Promise<never> {
  const startedAt = new Date();
  const started = performance.now();
  const machine = machineInfo();
  const ctx: BenchContext = {
    params: {},
    metrics: [],
    checks: [],
    servman: {},
    floor: {},
    notes: [],
    check(label, ok, detail) {
      this.checks.push({ label, ok, detail });
      say(`check: ${label}: ${ok ? "ok" : "FAILED"} (${detail})`);
    },
  };
  say(`${name}: ${title} (load average ${machine.loadAtStart} on ${machine.cpus} cores)`);
  let error: string | undefined;
  try {
    await body(ctx);
  } catch (err) {
    error = err instanceof Error ? (err.stack ?? err.message) : String(err);
    say(`${name} FAILED: ${error}`);
  }
  const left = stillTracked();
  ctx.check("every process the benchmark started has ended", left.length === 0, left.length === 0 ? "none left" : left.map((p) => `${p.what} (pid ${p.pid})`).join(", "));
  const result: BenchResult = {
    name,
    title,
    ok: error === undefined,
    ...(error !== undefined ? { error } : {}),
    startedAt: startedAt.toISOString(),
    durationMs: Math.round(performance.now() - started),
    machine: finishMachineInfo(machine),
    params: ctx.params,
    metrics: ctx.metrics,
    checks: ctx.checks,
    ratios: Object.fromEntries(ctx.metrics.filter((m) => m.floor !== null).map((m) => [m.key, m.ratio])),
    servman: ctx.servman,
    floor: ctx.floor,
    notes: ctx.notes,
  };
  const path = writeResult(result);
  print(`\n${title}\n`);
  if (ctx.metrics.length > 0) print(renderTable(METRIC_HEADERS, metricRows(ctx.metrics)));
  for (const c of ctx.checks) print(`${c.ok ? "ok    " : "FAILED"} ${c.label}: ${c.detail}`);
  for (const n of ctx.notes) print(`note: ${n}`);
  print(`wrote ${path} in ${(result.durationMs / 1000).toFixed(1)} s\n`);
  process.exit(error === undefined && ctx.checks.every((c) => c.ok) ? 0 : 1);
}
