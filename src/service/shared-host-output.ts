/**
 * What a shared host process sends its node (src/protocol/shared-host-messages.ts): its instances'
 * messages, their log lines and their ends, one IPC array per tick, with the backpressure the
 * SDK's single-service transport has (service-transport.ts), for the host's one channel.
 *
 * Log lines: `process.stdout` and `process.stderr` writes made while an instance's code runs
 * (its handlers, and the timers and promises they started: AsyncLocalStorage follows them) are
 * that instance's lines, sent tagged over IPC. A write outside every instance (the module's top
 * level, a crash's stack trace) goes to the host's own pipes, which the node reads as the
 * host's: see nodes/shared-host.ts.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { EventEmitter, once } from "node:events";
import { MAX_HOST_LINE, type HostItem, type HostStream } from "../protocol/shared-host-messages.js";
import type { ServiceToNode } from "../protocol/task-messages.js";

/** The host's view of one instance, as far as its output goes. */
export interface Slot {
  readonly slot: number;
  /** True once its end was sent: what it writes later goes to the node's log only. */
  ended: boolean;
  /** Messages it handed over that are not written yet (the SDK's `pending`, for `maxPendingSends`). */
  pending: number;
  /** The unfinished last line of its stdout and its stderr. */
  readonly partial: [string, string];
}

export class HostOutput extends EventEmitter {
  private queue: HostItem[] = [];
  /** The instance of each queued message, to count its `pending` down once written. */
  private owners: Slot[] = [];
  /** Sends handed to Node and not yet written. */
  private inFlight = 0;
  /** False from a send Node reports over its threshold until every send in flight completed. */
  writable = true;
  /** Whose code runs now: the instance its output belongs to. */
  readonly current = new AsyncLocalStorage<Slot>();

  constructor() {
    super();
    // What was queued in the tick of an exit still goes (an IPC write with room completes at once).
    process.on("exit", () => this.flush());
  }

  /** A message of `slot`'s service. */
  message(slot: Slot, message: ServiceToNode): void {
    if (slot.ended) return;
    slot.pending++;
    this.owners.push(slot);
    this.push({ i: slot.slot, m: message });
  }

  /** `slot` is over; its unfinished lines go first. Idempotent. */
  end(slot: Slot, code: number): void {
    if (slot.ended) return;
    for (const stream of [1, 2] as const) {
      const rest = slot.partial[stream - 1];
      if (rest !== "") this.line(slot, stream, rest);
      slot.partial[stream - 1] = "";
    }
    slot.ended = true;
    this.push({ i: slot.slot, e: code });
  }

  async drained(): Promise<void> {
    if (!this.writable) await once(this, "drain");
  }

  /** Sends this process's stdout and stderr writes made by an instance's code as that instance's lines. */
  captureStreams(): void {
    this.capture(process.stdout, 1);
    this.capture(process.stderr, 2);
  }

  private capture(stream: NodeJS.WriteStream, code: HostStream): void {
    const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
    stream.write = (chunk: unknown, encoding?: unknown, callback?: unknown) => {
      const slot = this.current.getStore();
      if (slot === undefined) return write(chunk, encoding, callback);
      const text = typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString(typeof encoding === "string" ? (encoding as BufferEncoding) : "utf8");
      this.text(slot, code, text);
      const done = typeof encoding === "function" ? encoding : callback;
      if (typeof done === "function") process.nextTick(done);
      return true;
    };
  }

  /** Cuts `text` into lines, keeping an unfinished last one (bounded) for the next write. */
  private text(slot: Slot, stream: HostStream, text: string): void {
    const lines = (slot.partial[stream - 1] + text).split("\n");
    const rest = lines.pop()!;
    for (const line of lines) this.line(slot, stream, line);
    slot.partial[stream - 1] = rest.length > MAX_HOST_LINE ? "" : rest;
    if (rest.length > MAX_HOST_LINE) this.line(slot, stream, rest);
  }

  private line(slot: Slot, stream: HostStream, line: string): void {
    const t = line.length > MAX_HOST_LINE ? `[line of ${line.length}+ characters dropped]` : line;
    this.push(slot.ended ? { o: stream, t } : { i: slot.slot, o: stream, t });
  }

  private push(item: HostItem): void {
    if (this.queue.push(item) === 1) process.nextTick(() => this.flush());
  }

  private flush(): void {
    if (this.queue.length === 0) return;
    const batch = this.queue;
    const owners = this.owners;
    this.queue = [];
    this.owners = [];
    this.inFlight++;
    const written = () => {
      this.inFlight--;
      for (const slot of owners) slot.pending--;
      // IPC has no drain event: the queue is known empty once every send handed over completed.
      if (this.inFlight === 0 && !this.writable) {
        this.writable = true;
        this.emit("drain");
      }
    };
    if (!process.connected) return written();
    // Always an array, even of one: the node learns from the first that this side takes batches.
    if (!process.send!(batch, undefined, {}, written)) this.writable = false;
  }
}
