/**
 * The child side of the task protocol's two transports: Node IPC when the node forked us
 * (`module` tasks), NDJSON on stdin/stdout otherwise. Either way the process exits when its node
 * goes away (IPC disconnect, stdin EOF), so a dead node leaves no orphan.
 *
 * What is sent in one tick leaves together: in one write on stdout, or over IPC as one array
 * once the node has offered batches in `start` (src/protocol/ipc-batching.ts).
 *
 * Backpressure: each transport counts the messages handed to it and not yet written (`pending`),
 * and says when its channel is full (`writable`): over Node IPC when `process.send` returns false
 * (its queue passed 128 KiB), until every write handed over has completed; on stdout when `write`
 * returns false, until `drain`. The service SDK bounds `pending` (Service.maxPendingSends).
 */
import { EventEmitter, once } from "node:events";
import { createInterface } from "node:readline";
import { offersBatches } from "../protocol/ipc-batching.js";
import type { NodeToService, ServiceToNode } from "../protocol/task-messages.js";
import { corkUntilNextTick } from "../tick-cork.js";

export interface ServiceTransport {
  /** Sends a message (in order, by the end of the tick); resolves once it is written. */
  send(message: ServiceToNode): Promise<void>;
  /** Called for each message from the node, in order. */
  onMessage(handler: (message: NodeToService) => void): void;
  /** Called once when the node is gone. */
  onDisconnect(handler: () => void): void;
  /** Messages handed over and not yet written (this tick's batch, the channel's queue). Optional for custom transports. */
  readonly pending?: number;
  /** False while the channel is full: slow down (await `drained()`). Optional for custom transports. */
  readonly writable?: boolean;
  /** Resolves once `writable` (at once if it is). Optional for custom transports. */
  drained?(): Promise<void>;
}

/** The `pending`/`writable` bookkeeping both transports share. */
class Flow extends EventEmitter {
  pending = 0;
  writable = true;

  block(): void {
    this.writable = false;
  }

  unblock(): void {
    if (this.writable) return;
    this.writable = true;
    this.emit("drain");
  }

  async drained(): Promise<void> {
    if (!this.writable) await once(this, "drain");
  }
}

function decode(value: unknown): NodeToService | null {
  if (typeof value === "string") {
    try {
      return JSON.parse(value) as NodeToService;
    } catch {
      return null;
    }
  }
  return typeof value === "object" && value !== null ? (value as NodeToService) : null;
}

/** A send's promise once the node is gone: nothing is written, nothing waits. */
const DONE = Promise.resolve();

/** Node IPC, batching a tick's messages into one array once the node offers it. */
function ipcTransport(): ServiceTransport {
  const flow = new Flow();
  let batches = false;
  let queued: ServiceToNode[] = [];
  /** What every send of the batch being gathered returns: one promise per batch, not per message. */
  let written: Promise<void> | undefined;
  let resolveWritten: () => void = () => {};
  const flush = () => {
    const batch = queued;
    if (batch.length === 0) return;
    const done = resolveWritten;
    queued = [];
    written = undefined;
    const resolveAll = () => {
      flow.pending -= batch.length;
      // IPC has no drain event: the queue is known empty once every write handed over completed.
      if (flow.pending === 0) flow.unblock();
      done();
    };
    if (!process.connected) return resolveAll();
    // Once agreed, every send is an array, even of one: the node learns from it that we take batches.
    if (!process.send!(batches ? batch : batch[0], undefined, {}, resolveAll)) flow.block();
  };
  // A handler may send and then exit at once (process.exit runs no more ticks): what it sent
  // still goes, as it did unbatched (an IPC write with room in the socket completes at once).
  process.on("exit", flush);
  return {
    send: (message) => {
      if (!process.connected) return DONE;
      queued.push(message);
      flow.pending++;
      const promise = (written ??= new Promise<void>((resolve) => (resolveWritten = resolve)));
      // Before the offer, each message is sent on its own, at once.
      if (!batches) flush();
      else if (queued.length === 1) process.nextTick(flush);
      return promise;
    },
    onMessage: (handler) => {
      const receive = (value: unknown) => {
        const message = decode(value);
        if (!message) return;
        if (offersBatches(message)) batches = true;
        handler(message);
      };
      process.on("message", (value: unknown) => (Array.isArray(value) ? value.forEach(receive) : receive(value)));
    },
    onDisconnect: (handler) => process.once("disconnect", handler),
    get pending() {
      return flow.pending;
    },
    get writable() {
      return flow.writable;
    },
    drained: () => flow.drained(),
  };
}

/** NDJSON on stdin and stdout; a tick's lines leave in one write. */
function stdioTransport(): ServiceTransport {
  const flow = new Flow();
  process.stdout.on("drain", () => flow.unblock());
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  // Sent and then exited at once: the lines still go (writes to a pipe are synchronous here).
  process.on("exit", () => {
    while (process.stdout.writableCorked > 0) process.stdout.uncork();
  });
  return {
    send: (message) =>
      new Promise((resolve) => {
        corkUntilNextTick(process.stdout);
        flow.pending++;
        const ok = process.stdout.write(JSON.stringify(message) + "\n", () => {
          flow.pending--;
          resolve();
        });
        if (!ok) flow.block();
      }),
    onMessage: (handler) =>
      lines.on("line", (line) => {
        const message = decode(line);
        if (message) handler(message);
      }),
    onDisconnect: (handler) => lines.once("close", handler),
    get pending() {
      return flow.pending;
    },
    get writable() {
      return flow.writable;
    },
    drained: () => flow.drained(),
  };
}

/** Picks IPC when this process has an IPC channel, else stdio. */
export function connectTransport(): ServiceTransport {
  return typeof process.send === "function" ? ipcTransport() : stdioTransport();
}
