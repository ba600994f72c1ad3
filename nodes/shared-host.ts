/**
 * One shared host process of a task with `isolation: "shared"` (docs/task-protocol.md#shared-isolation),
 * and the view each instance placed in it has of it (an {@link InstanceRuntime}). The host runs
 * src/service/shared-host-runner.ts; its one IPC channel carries the task protocol of all its
 * instances, each message tagged with the instance's slot (src/protocol/shared-host-messages.ts).
 *
 * What the instances share is the host's: its memory (sampled here once for all, and
 * `maxMemoryMb` applies to the whole host), its end (a crash ends every instance in it, each then
 * under its own restart policy), its channel's backlog (`queuedBytes`), and the lines it writes
 * outside any instance's code (logged once by the node, and kept in each instance's log and
 * post-mortem, since a crash's stack trace is one of them).
 */
import type { ChildProcess } from "node:child_process";
import type { Logger } from "pino";
import type { TaskConfig } from "../src/config/options.js";
import { HOST_EXIT, MAX_HOST_LINE, dropSlot, toSlot } from "../src/protocol/shared-host-messages.js";
import type { NodeToService } from "../src/protocol/task-messages.js";
import { ipcChannel, type ChildChannel } from "./child-channel.js";
import type { InstanceHealth } from "./instance-health.js";
import type { InstanceOutput } from "./instance-output.js";
import type { InstanceRuntime } from "./instance-runtime.js";
import { LineSplitter } from "./line-splitter.js";
import { residentKb } from "./memory-watch.js";
import { forkSharedHost, killProcessGroup } from "./spawn-process.js";

/** How long a host has to confirm that it dropped an instance before it counts as wedged and is killed. */
export const DROP_CONFIRM_MS = 2_000;
/** How often the host's memory is sampled (the first sample comes sooner). */
const MEMORY_SAMPLE_MS = 2_000;
const FIRST_MEMORY_SAMPLE_MS = 250;
/** A host asked to exit (idle, or its node closing) that is still there after this is killed. */
const EXIT_GRACE_MS = 2_000;

/** An instance placed in a host: what it is started with, and where what the host says of it goes. */
export interface SharedInstance {
  id: string;
  args: Record<string, unknown>;
  output: InstanceOutput;
  /** One message from its service (not yet checked). */
  onMessage(value: unknown): void;
  /** It ended (its service is over, or the host exited), and what it wrote before has been read. */
  onClose(code: number | null, signal: NodeJS.Signals | null): void;
}

/** What a host tells the set of hosts it belongs to (nodes/shared-hosts.ts). */
export interface SharedHostEvents {
  /** Its last instance ended. */
  emptied(host: SharedHost): void;
  /** The process has exited; its instances are told next. */
  exited(host: SharedHost): void;
  /** One piece of invalid output (node metrics). */
  countInvalid(): void;
}

export class SharedHost {
  readonly child: ChildProcess;
  private readonly channel: ChildChannel;
  private readonly views = new Map<number, SharedView>();
  private nextSlot = 1;
  /** `running` takes instances; `ending` was asked to exit or killed; `gone` has exited. */
  private state: "running" | "ending" | "gone" = "running";
  private memoryTimer: NodeJS.Timeout | undefined;
  /** Runs out once an asked exit took too long: the host is killed. */
  private exitTimer: NodeJS.Timeout | undefined;
  private peakKb = 0;
  /** Settles once the process has exited and its output is read. */
  readonly exited: Promise<void>;

  constructor(
    readonly task: TaskConfig,
    cwd: string,
    private readonly logger: Logger,
    private readonly events: SharedHostEvents,
  ) {
    this.child = forkSharedHost(task, cwd);
    this.logger = logger.child({ sharedHost: this.child.pid ?? null });
    this.channel = ipcChannel(this.child, { onMessage: (value) => this.onItem(value), onGarbage: () => this.events.countInvalid() });
    this.capture(this.child.stdout, "stdout");
    this.capture(this.child.stderr, "stderr");
    this.child.on("error", (err) => this.logger.error({ err }, "shared host process error"));
    this.exited = new Promise((resolve) => this.child.on("close", (code, signal) => resolve(this.onExit(code, signal))));
    this.memoryTimer = setTimeout(() => this.sampleMemory(), FIRST_MEMORY_SAMPLE_MS);
  }

  /** Instances it runs now. */
  get size(): number {
    return this.views.size;
  }

  /** True while it takes another instance. */
  get accepting(): boolean {
    return this.state === "running" && this.child.connected && this.views.size < this.task.instancesPerProcess;
  }

  /** Starts `instance` here: it gets a slot, and `start` goes to the host. */
  place(instance: SharedInstance): InstanceRuntime {
    const view = new SharedView(this, this.nextSlot++, instance);
    this.views.set(view.slot, view);
    view.channel.send(JSON.stringify({ type: "start", instance: instance.id, task: this.task.name, args: instance.args } satisfies NodeToService));
    return view;
  }

  /** Asks the host to exit (it has no instance left, or the node is closing); killed if it lingers. Idempotent. */
  end(): void {
    if (this.state !== "running") return;
    this.state = "ending";
    this.logger.debug({ instances: this.views.size }, "shared host ending");
    // Asked rather than disconnected: Node reports no `close` of a child its parent disconnected.
    this.channel.send(HOST_EXIT);
    this.exitTimer = setTimeout(() => this.kill(), EXIT_GRACE_MS);
  }

  /** SIGKILLs the host's process group: every instance in it ends, each as its restart policy says. */
  kill(): void {
    if (this.state === "gone") return;
    this.state = "ending";
    killProcessGroup(this.child);
  }

  /** Sends one message to the host: `text` is already tagged with its slot. */
  send(text: string): boolean {
    return this.channel.send(text);
  }

  /** Text handed to the host's channel and not yet written: the backlog all its instances share. */
  get queuedBytes(): number {
    return this.channel.queuedBytes;
  }

  /** A view is over: forgotten, and a host left empty says so. */
  detach(view: SharedView): void {
    if (this.views.get(view.slot) !== view) return;
    this.views.delete(view.slot);
    if (this.views.size === 0 && this.state === "running") this.events.emptied(this);
  }

  /** A dropped instance the host did not confirm in time: its event loop is blocked. */
  wedged(view: SharedView): void {
    if (this.state === "gone") return;
    this.logger.warn(
      { instance: view.instance.id, instances: this.views.size, waitedMs: DROP_CONFIRM_MS },
      "shared host did not drop an instance in time (its event loop is blocked?); killing the host",
    );
    this.kill();
  }

  private onItem(value: unknown): void {
    if (typeof value !== "object" || value === null) return this.events.countInvalid();
    const item = value as { i?: unknown; m?: unknown; o?: unknown; t?: unknown; e?: unknown };
    const source = item.o === 1 ? "stdout" : "stderr";
    if (item.i === undefined) {
      // A line of an instance already over: the node's log only.
      if (typeof item.t === "string") this.logger.info({ source }, capped(item.t));
      return;
    }
    const view = typeof item.i === "number" ? this.views.get(item.i) : undefined;
    // An instance already over (dropped, or its host told of its end) says nothing more.
    if (!view) return;
    if (item.m !== undefined) view.instance.onMessage(item.m);
    else if (typeof item.t === "string") view.instance.output.line(source, capped(item.t));
    else if (typeof item.e === "number") view.ended(item.e, null);
    else view.instance.output.reportInvalid("shared host sent an item of no known kind");
  }

  /** The host's own lines (outside every instance's code): logged once, kept by each instance. */
  private capture(stream: NodeJS.ReadableStream | null, source: "stdout" | "stderr"): void {
    if (!stream) return;
    const line = (text: string) => {
      this.logger.info({ source }, text);
      for (const view of this.views.values()) view.instance.output.keep(source, text);
    };
    const splitter = new LineSplitter({ maxLineLength: MAX_HOST_LINE, onLine: line, onOversized: (length) => line(`[line of ${length}+ characters dropped]`) });
    stream.on("data", (chunk: Buffer) => splitter.push(chunk));
    stream.on("end", () => splitter.end());
  }

  private sampleMemory(): void {
    const pid = this.child.pid;
    if (pid === undefined || this.state === "gone") return;
    void residentKb(pid).then((kb) => {
      if (kb === null || this.state === "gone") return;
      this.peakKb = Math.max(this.peakKb, kb);
      for (const view of this.views.values()) view.health?.sampled(kb);
      const limit = this.task.maxMemoryMb;
      if (limit !== undefined && kb > limit * 1024 && this.state === "running") {
        const mb = Math.round(kb / 1024);
        this.logger.warn({ rssMb: mb, maxMemoryMb: limit, instances: this.views.size }, "shared host is over maxMemoryMb; killing it and its instances");
        for (const view of this.views.values()) view.instance.output.keep("servman", `killed: resident memory ${mb} MB of its shared host (${this.views.size} instances) over maxMemoryMb ${limit}`);
        return this.kill();
      }
      this.memoryTimer = setTimeout(() => this.sampleMemory(), MEMORY_SAMPLE_MS);
    });
  }

  private onExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.state = "gone";
    clearTimeout(this.memoryTimer);
    clearTimeout(this.exitTimer);
    this.channel.close();
    const views = [...this.views.values()];
    this.views.clear();
    const level = views.length > 0 ? "warn" : "debug";
    this.logger[level]({ code, signal, instances: views.length, peakRssMb: Math.round(this.peakKb / 1024) }, "shared host exited");
    // Out of the set first: the instances' restarts must find other hosts.
    this.events.exited(this);
    for (const view of views) view.ended(code, signal);
  }
}

/** One instance's place in a host: the {@link InstanceRuntime} its `Instance` drives. */
class SharedView implements InstanceRuntime {
  readonly channel: ChildChannel;
  health: InstanceHealth | undefined;
  private dropped = false;
  private over = false;
  private confirmTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly host: SharedHost,
    readonly slot: number,
    readonly instance: SharedInstance,
  ) {
    this.channel = {
      send: (json) => !this.over && host.send(toSlot(slot, json)),
      get queuedBytes() {
        return host.queuedBytes;
      },
      close: () => host.detach(this),
    };
  }

  get pid(): number | undefined {
    return this.host.child.pid;
  }

  kill(): void {
    if (this.dropped || this.over) return;
    this.dropped = true;
    this.host.send(dropSlot(this.slot));
    this.confirmTimer = setTimeout(() => this.host.wedged(this), DROP_CONFIRM_MS);
  }

  watchMemory(health: InstanceHealth): void {
    this.health = health;
  }

  /** The host says the instance is over (`code`), or the host itself exited. */
  ended(code: number | null, signal: NodeJS.Signals | null): void {
    if (this.over) return;
    this.over = true;
    clearTimeout(this.confirmTimer);
    this.host.detach(this);
    // Dropped on the node's word: ended as a killed process would have, whatever the service did.
    if (this.dropped) this.instance.onClose(null, "SIGKILL");
    else this.instance.onClose(code, signal);
  }
}

function capped(text: string): string {
  return text.length > MAX_HOST_LINE ? `[line of ${text.length}+ characters dropped]` : text;
}
