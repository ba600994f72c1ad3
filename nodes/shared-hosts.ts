/**
 * A node's shared host processes, per task with `isolation: "shared"`
 * (docs/task-protocol.md#shared-isolation): where an instance of such a task goes, and when a host
 * starts and ends.
 *
 * Placement: the oldest host with room (fewer than `instancesPerProcess` instances) takes the
 * instance, so a launch forks only when every host is full (or there is none), and hosts fill
 * up rather than spread. A host forked for one launch takes the next ones at once, even while
 * its module still loads: their `start` waits in its channel.
 *
 * Ends: a host left with no instance exits after {@link HOST_IDLE_MS} unless it gets one
 * meanwhile, or unless the task keeps `warm` hosts and this is one of them: with `warm: N` the
 * node starts N hosts when it starts, and never ends an empty host while the task has N or fewer.
 */
import type { Logger } from "pino";
import type { TaskConfig } from "../src/config/options.js";
import type { InstanceRuntime } from "./instance-runtime.js";
import { SharedHost, type SharedInstance } from "./shared-host.js";

/** How long an empty host waits for an instance before it exits. */
export const HOST_IDLE_MS = 10_000;

export interface SharedHostsOptions {
  /** Working directory of the hosts (the node's baseDir). */
  cwd: string;
  logger: Logger;
  /** One piece of invalid output from a host (node metrics). */
  countInvalid(): void;
}

export class SharedHosts {
  private readonly byTask = new Map<string, SharedHost[]>();
  private readonly idle = new Map<SharedHost, NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly options: SharedHostsOptions) {}

  /** Starts the `warm` hosts of each shared task among `tasks`. */
  start(tasks: Iterable<TaskConfig>): void {
    for (const task of tasks) {
      if (task.isolation !== "shared") continue;
      for (let i = 0; i < task.warm; i++) this.fork(task);
    }
  }

  /** Places an instance of `task` in a host with room, forking one when none has. */
  place(task: TaskConfig, instance: SharedInstance): InstanceRuntime {
    const host = this.hostsOf(task).find((h) => h.accepting) ?? this.fork(task);
    const idle = this.idle.get(host);
    if (idle) {
      clearTimeout(idle);
      this.idle.delete(host);
    }
    return host.place(instance);
  }

  /** Ends every host (their instances should be over by now); resolves once they have exited. Idempotent. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.idle.values()) clearTimeout(t);
    this.idle.clear();
    const hosts = [...this.byTask.values()].flat();
    for (const host of hosts) host.end();
    await Promise.all(hosts.map((h) => h.exited));
  }

  private hostsOf(task: TaskConfig): SharedHost[] {
    let hosts = this.byTask.get(task.name);
    if (!hosts) this.byTask.set(task.name, (hosts = []));
    return hosts;
  }

  private fork(task: TaskConfig): SharedHost {
    const host = new SharedHost(task, this.options.cwd, this.options.logger.child({ task: task.name }), {
      emptied: (h) => this.emptied(h),
      exited: (h) => this.exited(h),
      countInvalid: () => this.options.countInvalid(),
    });
    this.hostsOf(task).push(host);
    // Closed meanwhile (a launch racing the node's close): it ends once it has nothing to do.
    if (this.closed) this.emptied(host);
    return host;
  }

  private emptied(host: SharedHost): void {
    if (this.idle.has(host)) return;
    const t = setTimeout(() => {
      this.idle.delete(host);
      if (host.size > 0) return;
      // Warm capacity: the task's first `warm` hosts stay.
      if (!this.closed && this.hostsOf(host.task).length <= host.task.warm) return;
      host.end();
    }, HOST_IDLE_MS);
    this.idle.set(host, t);
  }

  private exited(host: SharedHost): void {
    clearTimeout(this.idle.get(host));
    this.idle.delete(host);
    const hosts = this.hostsOf(host.task);
    const i = hosts.indexOf(host);
    if (i >= 0) hosts.splice(i, 1);
  }
}
