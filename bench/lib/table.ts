/** Plain-text tables for the terminal (and for pasting into the README as Markdown). */
import { targetText, type Metric } from "./results.js";

/** Formats a number for a table: 3 significant digits below 1000, thousands grouped above. */
export function formatNumber(value: number | null | undefined): string {
  if (value === null || value === undefined || !Number.isFinite(value)) return "-";
  if (value === 0) return "0";
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  return Number(value.toPrecision(3)).toString();
}

/** "1.23x", or "-" without a ratio. */
export function formatRatio(value: number | null | undefined): string {
  return value === null || value === undefined ? "-" : `${value.toFixed(2)}x`;
}

/** A Markdown table (readable as is in a terminal); numeric-looking cells are right-aligned. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  // A column is numeric when every non-empty cell looks like a number ("-" stands for none).
  const numeric = headers.map((_, i) => {
    const cells = rows.map((r) => r[i] ?? "").filter((c) => c !== "");
    return cells.length > 0 && cells.every((c) => /^[-+~]?[\d.,]+[x%]?$|^-$/.test(c));
  });
  const cell = (text: string, i: number) => (numeric[i] ? text.padStart(widths[i]) : text.padEnd(widths[i]));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => cell(c, i)).join(" | ")} |`;
  const rule = `| ${widths.map((w, i) => (numeric[i] ? "-".repeat(w - 1) + ":" : "-".repeat(w))).join(" | ")} |`;
  return [line(headers), rule, ...rows.map((r) => line(r))].join("\n") + "\n";
}

/** "yes" / "NO" / "" for a metric's target. */
export function metText(met: boolean | null): string {
  return met === null ? "" : met ? "yes" : "NO";
}

/** The rows of a benchmark's metrics: ratio first, then the two figures and the target. */
export function metricRows(metrics: readonly Metric[], prefix = ""): string[][] {
  return metrics.map((m) => [`${prefix}${m.label}${m.unit ? ` (${m.unit})` : ""}`, formatRatio(m.ratio), formatNumber(m.servman), formatNumber(m.floor), targetText(m.target), metText(m.met)]);
}

/** Column headers matching {@link metricRows}. */
export const METRIC_HEADERS = ["metric", "servman/floor", "servman", "floor", "target", "met"] as const;
