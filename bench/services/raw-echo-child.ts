/**
 * The floor's instance process, with no Servman code. Forked with an IPC channel it echoes every
 * IPC message; spawned without one (the `command` variant) it echoes every stdin line on stdout,
 * one write per line. Like a Servman service, it exits when its parent goes away (IPC disconnect,
 * stdin EOF), so it is never orphaned.
 */
import { createInterface } from "node:readline";

if (typeof process.send === "function") {
  process.on("message", (message: unknown) => {
    process.send!(message);
  });
  process.once("disconnect", () => process.exit(0));
  // First message, so a parent can wait for "the child is running" the way Servman waits for ready.
  process.send("ready");
} else {
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  lines.on("line", (line) => process.stdout.write(line + "\n"));
  lines.once("close", () => process.exit(0));
  process.stdout.write("ready\n");
}
