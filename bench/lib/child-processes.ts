/**
 * Starting the processes a benchmark measures: the real `servman` program (as users run it) and
 * the bench's own server scripts (the floors), each in a child process of its own so its memory
 * can be read from /proc and its CPU is not shared with the load generator's event loop.
 */
import { fork, spawn, type ChildProcess } from "node:child_process";
import { CLI, ROOT, serverScript } from "./paths.js";
import { endProcess, track } from "./process-guard.js";
import { profileFlags } from "./profiling.js";

/** Keeps the last `max` characters of a stream, to explain a failure without holding everything. */
function tail(max = 64 * 1024): { push(chunk: Buffer | string): void; text(): string } {
  let text = "";
  return {
    push(chunk) {
      text += chunk.toString();
      if (text.length > max) text = text.slice(text.length - max);
    },
    text: () => text,
  };
}

/** The environment for Servman processes: none of the developer's SERVMAN_* variables leak in. */
export function servmanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith("SERVMAN_")) env[k] = v;
  // warn, not info: a log line per launch would be measured as part of the launch.
  return { ...env, SERVMAN_LOG_LEVEL: "warn", ...extra };
}

/** A running `servman` server process (start, gateway or node). */
export interface ServmanProcess {
  child: ChildProcess;
  pid: number;
  /** The client URL it printed, or null for `servman node`. */
  url: string | null;
  /** The last 64 KiB of its stderr. */
  stderr(): string;
  /** SIGTERM (a drain), then SIGKILL after `deadlineMs`; resolves with the exit code. */
  stop(deadlineMs?: number): Promise<number | null>;
}

/**
 * Runs `node bin/servman.js ...args` and resolves once it printed its "Ctrl-C to stop" line.
 * @param args e.g. `["start", "--config", path, "--port", "0"]`
 */
export function startServman(args: string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<ServmanProcess> {
  const child = spawn(process.execPath, [...profileFlags(`servman-${args[0] ?? ""}`), CLI, ...args], { cwd: ROOT, env: options.env ?? servmanEnv(), stdio: ["ignore", "ignore", "pipe"] });
  track(child, `servman ${args[0] ?? ""}`);
  const err = tail();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void endProcess(child, "SIGKILL");
      reject(new Error(`servman ${args[0]} did not start within ${options.timeoutMs ?? 30_000} ms: ${err.text()}`));
    }, options.timeoutMs ?? 30_000);
    let started = false;
    child.stderr.on("data", (chunk: Buffer) => {
      err.push(chunk);
      if (started || !/Ctrl-C to stop/.test(err.text())) return;
      started = true;
      clearTimeout(timer);
      const url = /ws:\/\/[\w.\-[\]:]+\/v1\/connect/.exec(err.text())?.[0] ?? null;
      resolve({ child, pid: child.pid!, url, stderr: () => err.text(), stop: (deadlineMs = 30_000) => endProcess(child, "SIGTERM", deadlineMs) });
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      if (!started) reject(new Error(`servman ${args[0]} exited (${code ?? signal}) before it started: ${err.text()}`));
    });
  });
}

/** A bench server script (bench/servers/*.ts) running in a child process, driven over IPC. */
export interface ScriptProcess<Ready> {
  child: ChildProcess;
  pid: number;
  /** What the script reported when it was ready. */
  ready: Ready;
  stderr(): string;
  /** Sends `{cmd, ...params}` and resolves with the script's answer (rejects with its error). */
  request<T>(cmd: string, params?: Record<string, unknown>, timeoutMs?: number): Promise<T>;
  /** SIGTERM, then SIGKILL after `deadlineMs`. */
  stop(deadlineMs?: number): Promise<number | null>;
}

/** What a server script sends: `{type: "ready", ...}` once, then `{type: "reply", id, ...}`. */
interface ScriptMessage {
  type: "ready" | "reply";
  id?: number;
  error?: string;
  result?: unknown;
  [key: string]: unknown;
}

/**
 * Forks `bench/servers/<name>.js` (or `options.path`, a compiled script elsewhere, named `name`)
 * with `args` and resolves once it sent `{type: "ready"}`. `execArgv` lets a floor run with the
 * same Node flags as the program it is compared with.
 */
export function startScript<Ready = Record<string, unknown>>(
  name: string,
  args: string[] = [],
  options: { timeoutMs?: number; execArgv?: string[]; path?: string } = {},
): Promise<ScriptProcess<Ready>> {
  const child = fork(options.path ?? serverScript(name), args, { cwd: ROOT, stdio: ["ignore", "ignore", "pipe", "ipc"], execArgv: [...profileFlags(name), ...(options.execArgv ?? [])] });
  track(child, name);
  const err = tail();
  child.stderr!.on("data", (chunk: Buffer) => err.push(chunk));
  let nextId = 1;
  const waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  child.on("exit", (code, signal) => {
    for (const w of waiting.values()) w.reject(new Error(`${name} exited (${code ?? signal}): ${err.text()}`));
    waiting.clear();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void endProcess(child, "SIGKILL");
      reject(new Error(`${name} was not ready within ${options.timeoutMs ?? 30_000} ms: ${err.text()}`));
    }, options.timeoutMs ?? 30_000);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code ?? signal}) before it was ready: ${err.text()}`));
    });
    child.on("message", (message: ScriptMessage) => {
      if (message.type === "ready") {
        clearTimeout(timer);
        resolve({
          child,
          pid: child.pid!,
          ready: message as unknown as Ready,
          stderr: () => err.text(),
          request<T>(cmd: string, params: Record<string, unknown> = {}, timeoutMs = 600_000): Promise<T> {
            const id = nextId++;
            return new Promise<T>((res, rej) => {
              const t = setTimeout(() => {
                waiting.delete(id);
                rej(new Error(`${name} did not answer ${cmd} within ${timeoutMs} ms`));
              }, timeoutMs);
              waiting.set(id, {
                resolve: (v) => (clearTimeout(t), res(v as T)),
                reject: (e) => (clearTimeout(t), rej(e)),
              });
              child.send({ ...params, cmd, id });
            });
          },
          stop: (deadlineMs = 30_000) => endProcess(child, "SIGTERM", deadlineMs),
        });
        return;
      }
      if (message.type === "reply" && message.id !== undefined) {
        const w = waiting.get(message.id);
        waiting.delete(message.id);
        if (!w) return;
        if (typeof message.error === "string") w.reject(new Error(`${name}: ${message.error}`));
        else w.resolve(message.result);
      }
    });
  });
}
