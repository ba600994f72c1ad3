/**
 * The benchmarks' terminal output. Benchmarks are programs, so printing is their job; this module
 * keeps it in one place (stdout, never console.log) with a timestamp relative to the start.
 */
const started = performance.now();

/** Prints one progress line: `[  12.3s] text`. */
export function say(text: string): void {
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[${t}s] ${text}\n`);
}

/** Prints a block (a table) as it is. */
export function print(block: string): void {
  process.stdout.write(block.endsWith("\n") ? block : `${block}\n`);
}
