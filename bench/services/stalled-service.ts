/**
 * The service of the `stalled` benchmark: a `command` task in plain NDJSON (no SDK) that answers
 * `start` with `ready` and a join with `accept`, and from then on never reads its stdin again, as
 * a hung or paused service would. What its node sends it after that waits in the node.
 */
import { createInterface } from "node:readline";

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
const write = (message: Record<string, unknown>) => process.stdout.write(JSON.stringify(message) + "\n");

lines.on("line", (line) => {
  const message = JSON.parse(line) as { type?: string; client?: string };
  if (message.type === "start") write({ type: "ready" });
  else if (message.type === "join") {
    write({ type: "accept", client: message.client });
    // Stops reading: stdin's buffer fills, then the pipe's, then whatever the node holds.
    lines.pause();
    process.stdin.pause();
    // A paused stdin keeps no handle active: without a timer the process would just exit.
    setInterval(() => {}, 60_000);
  } else if (message.type === "shutdown") process.exit(0);
});
