/**
 * Where the service SDK and a shared host process (src/service/shared-host-runner.ts) meet. The
 * host puts its hook on `globalThis` before it imports the task's module, so `runService(Class)`
 * hands it the class instead of running one service for the whole process; the host then runs
 * one object of the class per instance, each on a {@link HostedTransport}. A registered symbol,
 * not a module variable: the module may load another copy of the SDK than the host's.
 */
import type { ServiceTransport } from "./service-transport.js";

/** The transport of one of several services in one process: the service ending does not end the process. */
export interface HostedTransport extends ServiceTransport {
  /** The service is over (it stopped, shut down, or failed to start): `code` is what its process would have exited with. */
  end(code: number): void;
}

/** What a shared host puts on `globalThis` for `runService`. */
export interface SharedHostHook {
  /** Takes `runService`'s argument; throws when it cannot run it once per instance (not a class). */
  register(service: unknown): void;
}

const HOOK = Symbol.for("servman.shared-host");

/** The hook of the shared host this process is, if it is one. */
export function sharedHostHook(): SharedHostHook | undefined {
  return (globalThis as Record<symbol, SharedHostHook | undefined>)[HOOK];
}

/** Makes this process a shared host: `runService` registers with `hook` from now on. */
export function installSharedHostHook(hook: SharedHostHook): void {
  (globalThis as Record<symbol, SharedHostHook | undefined>)[HOOK] = hook;
}

/** True for a transport that runs its service as one of several in its process. */
export function isHosted(transport: ServiceTransport): transport is HostedTransport {
  return typeof (transport as Partial<HostedTransport>).end === "function";
}
