/**
 * The launch and density floor: `fork()` of the service file, told to start the way a node tells
 * it, timed until its first IPC message (the service's `ready`). No Redis, no queue, no registry.
 * Runs in its own process, like a Servman node, so its own memory can be read separately.
 *
 * Usage (forked by a benchmark): forker.js <service.js>
 */
import { fork, type ChildProcess } from "node:child_process";
import { mapLimit } from "../lib/concurrency.js";
import { reportReady, serveRequests } from "../lib/script-side.js";

const service = process.argv[2];
const children = new Map<number, ChildProcess>();
let nextInstance = 0;

function launchOne(): Promise<number> {
  const start = performance.now();
  // detached, as a Servman node forks: with the kernel's autogroup scheduling a new session is a
  // scheduling group of its own, which changes how much CPU the child gets on a busy machine.
  const child = fork(service, [], { stdio: ["ignore", "ignore", "inherit", "ipc"], detached: true });
  const pid = child.pid!;
  children.set(pid, child);
  child.once("exit", () => children.delete(pid));
  return new Promise((resolve, reject) => {
    child.once("message", () => resolve(performance.now() - start));
    child.once("exit", (code, signal) => reject(new Error(`child exited (${code ?? signal}) before its first message`)));
    // The same start message a Servman node sends (as JSON text, which the SDK decodes).
    child.send(JSON.stringify({ type: "start", instance: `floor-${nextInstance++}`, task: "echo", args: {} }));
  });
}

async function killAll(): Promise<number> {
  const all = [...children.values()];
  const exits = all.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once("exit", r))));
  for (const c of all) c.kill("SIGKILL");
  await Promise.all(exits);
  return all.length;
}

serveRequests(
  {
    /** Launches `count` children, `concurrency` at a time; answers each one's time to ready. */
    async launch(params) {
      const count = Number(params.count);
      const concurrency = Number(params.concurrency ?? 1);
      const start = performance.now();
      const latencies = await mapLimit(count, concurrency, () => launchOne());
      return { latencies, durationMs: performance.now() - start };
    },
    pids: () => [...children.keys()],
    killAll,
  },
  async () => {
    await killAll();
  },
);
reportReady({});
