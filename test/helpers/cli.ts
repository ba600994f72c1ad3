/** Running the real `servman` program as a child process. */
import { spawn, type ChildProcess } from "node:child_process";
import { CLI, ROOT, testTasks, writeConfig } from "./cluster.js";
import { freePort } from "./redis-server.js";

export { freePort };

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment for CLI runs: no SERVMAN_* variables of the developer's leak in. */
export function cliEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SERVMAN_")) env[k] = v;
  return { ...env, SERVMAN_LOG_LEVEL: "warn", ...extra };
}

/** Runs `servman ...args` to completion (killed after `timeoutMs`). */
export function runCli(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; bin?: string } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [options.bin ?? CLI, ...args], { cwd: ROOT, env: options.env ?? cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.on("error", reject);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** A long-running `servman` server process. */
export interface ServerProcess {
  child: ChildProcess;
  stderr(): string;
  /** Sends `signal` and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `servman ...args` and resolves once it printed its ready line. */
export function startServer(args: string[], options: { env?: NodeJS.ProcessEnv; bin?: string } = {}): Promise<ServerProcess> {
  const child = spawn(process.execPath, [options.bin ?? CLI, ...args], { cwd: ROOT, env: options.env ?? cliEnv(), stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  const exited = new Promise<number | null>((resolve) => child.on("close", (code) => resolve(code)));
  const server: ServerProcess = {
    child,
    stderr: () => stderr,
    async stop(signal = "SIGTERM") {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`server did not start: ${stderr}`));
    }, 20_000);
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      if (/Ctrl-C to stop/.test(stderr)) {
        clearTimeout(timer);
        resolve(server);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}: ${stderr}`));
    });
  });
}

/**
 * A `servman gateway` process of its own against `redis` (to SIGKILL in a test), on a free port;
 * pushed to `servers` for the suite to end.
 */
export async function startGatewayProcess(redis: string, resumeWindowMs: number, servers: ServerProcess[]): Promise<{ server: ServerProcess; url: string }> {
  const port = await freePort();
  const config = writeConfig({ redis, prefix: "t", gateway: { host: "127.0.0.1", port, resumeWindowMs }, tasks: testTasks() });
  const server = await startServer(["gateway", "--config", config], { env: cliEnv() });
  servers.push(server);
  return { server, url: `ws://127.0.0.1:${port}/v1/connect` };
}
