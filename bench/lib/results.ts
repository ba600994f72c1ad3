/**
 * The shape of bench/results/<name>.json: every figure for Servman next to the same figure for
 * its floor, with the ratio between them and, where the issue sets one, the target on that ratio.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { MachineInfo } from "./machine.js";
import { RESULTS_DIR } from "./paths.js";
import { ratio } from "./stats.js";

/** Which direction is good for a figure. */
export type Better = "lower" | "higher";

/** A target on servman / floor (issue 5), or on Servman's figure itself (`below`). */
export interface RatioTarget {
  maxRatio?: number;
  minRatio?: number;
  /** Servman's figure must be under this, in the metric's unit (warm launch p50 < 20 ms). */
  below?: number;
}

/** One figure measured for Servman and its floor. */
export interface Metric {
  key: string;
  label: string;
  unit: string;
  better: Better;
  servman: number | null;
  floor: number | null;
  /** servman / floor. */
  ratio: number | null;
  target?: RatioTarget;
  /** Whether the ratio meets the target; null without a target or a ratio. */
  met: boolean | null;
}

/** A pass/fail fact (nothing left running, no message lost, every pair passed...). */
export interface Check {
  label: string;
  ok: boolean;
  detail: string;
}

/** Everything one benchmark writes. */
export interface BenchResult {
  name: string;
  title: string;
  /** False when the benchmark could not finish; `error` says why. */
  ok: boolean;
  error?: string;
  startedAt: string;
  durationMs: number;
  machine: MachineInfo;
  params: Record<string, unknown>;
  metrics: Metric[];
  checks: Check[];
  /** servman / floor per metric key (the same numbers as in `metrics`, for quick reading). */
  ratios: Record<string, number | null>;
  /** Raw figures measured for Servman (p50 / p99 / throughput and more). */
  servman: Record<string, unknown>;
  /** Raw figures measured for the floor. */
  floor: Record<string, unknown>;
  notes: string[];
}

/** Builds a metric, computing the ratio and whether it meets `target`. */
export function metric(key: string, label: string, unit: string, better: Better, servman: number | null, floor: number | null, target?: RatioTarget): Metric {
  const r = ratio(servman, floor);
  let met: boolean | null = null;
  if (target?.below !== undefined && servman !== null) met = servman < target.below;
  if (target && r !== null && (target.maxRatio !== undefined || target.minRatio !== undefined)) {
    met = (met ?? true) && (target.maxRatio === undefined || r <= target.maxRatio) && (target.minRatio === undefined || r >= target.minRatio);
  }
  return { key, label, unit, better, servman, floor, ratio: r, ...(target ? { target } : {}), met };
}

/** A metric with no floor (a fact about Servman alone). */
export function soloMetric(key: string, label: string, unit: string, better: Better, servman: number | null): Metric {
  return { key, label, unit, better, servman, floor: null, ratio: null, met: null };
}

/** "<= 1.3x" or ">= 1.0x". */
export function targetText(target: RatioTarget | undefined): string {
  if (!target) return "";
  const parts: string[] = [];
  if (target.minRatio !== undefined) parts.push(`>= ${target.minRatio}x`);
  if (target.maxRatio !== undefined) parts.push(`<= ${target.maxRatio}x`);
  if (target.below !== undefined) parts.push(`< ${target.below}`);
  return parts.join(", ");
}

/** Writes bench/results/<name>.json and returns its path. */
export function writeResult(result: BenchResult): string {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const path = join(RESULTS_DIR, `${result.name}.json`);
  writeFileSync(path, JSON.stringify(result, null, 2) + "\n");
  return path;
}

/** Reads bench/results/<name>.json, or null when it is missing or unreadable. */
export function readResult(name: string): BenchResult | null {
  try {
    return JSON.parse(readFileSync(join(RESULTS_DIR, `${name}.json`), "utf8")) as BenchResult;
  } catch {
    return null;
  }
}
