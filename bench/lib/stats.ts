/**
 * Percentiles by sorting the samples: the benchmarks keep at most tens of thousands of samples,
 * so an exact sort is cheap and needs no histogram dependency.
 */

/** Latency figures of one series, in milliseconds. */
export interface LatencySummary {
  n: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  meanMs: number;
  minMs: number;
  maxMs: number;
}

/** Nearest-rank percentile of an ascending array (`p` from 0 to 1); 0 for an empty array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** Rounds to `digits` decimals, for JSON and tables that stay readable. */
export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** p50 / p90 / p99 / mean / min / max of `samplesMs` (not modified). */
export function summarize(samplesMs: readonly number[]): LatencySummary {
  const sorted = [...samplesMs].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    p50Ms: round(percentile(sorted, 0.5)),
    p90Ms: round(percentile(sorted, 0.9)),
    p99Ms: round(percentile(sorted, 0.99)),
    meanMs: round(sorted.length === 0 ? 0 : sum / sorted.length),
    minMs: round(sorted[0] ?? 0),
    maxMs: round(sorted[sorted.length - 1] ?? 0),
  };
}

/** The median of `values` (the middle one of an odd count, the lower middle of an even count); 0 for none. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)] ?? 0;
}

/** servman / floor, or null when either is missing or the floor is zero. */
export function ratio(servman: number | null | undefined, floor: number | null | undefined): number | null {
  if (servman === null || servman === undefined || floor === null || floor === undefined || floor === 0) return null;
  return round(servman / floor, 3);
}
