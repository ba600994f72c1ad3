/**
 * Where a profiled process spent its CPU: reads a .cpuprofile (written with BENCH_PROFILE=1) and
 * prints the functions with the most self time, and the same grouped by file or package.
 *
 *   node dist/bench/profile-top.js bench/results/profiles/relay-servman-start/CPU...cpuprofile [rows]
 */
import { readFileSync } from "node:fs";
import { print } from "./lib/output.js";
import { renderTable } from "./lib/table.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

const [file, rowsArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write("usage: node dist/bench/profile-top.js FILE.cpuprofile [rows]\n");
  process.exit(2);
}
const rows = Number(rowsArg ?? 30);
const profile = JSON.parse(readFileSync(file, "utf8")) as Profile;

// Self time per node: each sample is charged the delta that follows it.
const selfUs = new Map<number, number>();
profile.samples.forEach((id, i) => selfUs.set(id, (selfUs.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0)));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

/** node_modules/<pkg>, node:internal, or the repository file. */
function where(url: string): string {
  if (url === "") return "(native / V8)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return `npm:${pkg[1]}`;
  if (url.startsWith("node:")) return url.split("/").slice(0, 2).join("/");
  const repo = /\/dist\/(.*)$/.exec(url);
  return repo ? repo[1] : url;
}

const byFunction = new Map<string, number>();
const byFile = new Map<string, number>();
for (const node of profile.nodes) {
  const us = selfUs.get(node.id) ?? 0;
  if (us === 0) continue;
  const { functionName, url, lineNumber } = node.callFrame;
  const fn = `${functionName || "(anonymous)"} ${where(url)}${url ? `:${lineNumber + 1}` : ""}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + us);
  byFile.set(where(url), (byFile.get(where(url)) ?? 0) + us);
}

const top = (m: Map<string, number>) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, rows)
    .map(([name, us]) => [`${((us * 100) / total).toFixed(1)}%`, `${Math.round(us / 1000)}`, name]);

print(`${file}: ${Math.round(total / 1000)} ms of samples over ${Math.round((profile.endTime - profile.startTime) / 1000)} ms\n`);
print(renderTable(["self", "ms", "function"], top(byFunction)));
print("");
print(renderTable(["self", "ms", "file or package"], top(byFile)));
