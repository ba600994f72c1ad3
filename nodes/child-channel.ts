/**
 * The two transports of the task protocol behind one interface: Node IPC for `module` tasks and
 * NDJSON on stdin/stdout for `command` tasks. The node always hands a channel JSON text, so a
 * client's message can be forwarded without being parsed (see bus-messages.ts).
 *
 * Both batch what is sent in one event-loop turn (src/tick-cork.ts): the line channel writes it in one syscall, the IPC channel
 * sends it as one IPC message once the service takes batches (src/protocol/ipc-batching.ts).
 *
 * Both count what they hold for a process that is slow to read (`queuedBytes`), so the instance
 * can stop handing them client messages (nodes/stalled-delivery.ts): neither Node's stream buffer
 * nor its IPC queue has a bound of its own.
 */
import type { ChildProcess } from "node:child_process";
import { withBatchOffer } from "../src/protocol/ipc-batching.js";
import { atTurnEnd, corkUntilTurnEnd } from "../src/tick-cork.js";
import { LineSplitter } from "./line-splitter.js";

/** Longest line accepted from a command task's stdout. */
const MAX_LINE_LENGTH = 1024 * 1024;

export interface ChildChannelHandlers {
  /** A decoded message from the service (not yet validated). */
  onMessage(value: unknown): void;
  /** Something the service wrote that is not a message (bad JSON, oversized line). */
  onGarbage(problem: string): void;
}

/** Sends JSON text to a service and decodes what it sends back. */
export interface ChildChannel {
  /** Sends one message given as JSON text (in order, by the end of the event-loop turn). Returns false once the channel is gone. */
  send(json: string): boolean;
  /**
   * Text handed to `send` and not yet written to the process (in UTF-16 units, which is bytes for
   * ASCII JSON): it grows while the process does not read.
   */
  readonly queuedBytes: number;
  /** Stops delivering and sending (the process is ending). */
  close(): void;
}

/**
 * Node IPC: JSON text is sent as a string; the service SDK parses it. The first message sent
 * (always `start`) offers batches; once the service has sent an array, a turn's messages go to
 * it as one array of strings.
 */
export function ipcChannel(child: ChildProcess, handlers: ChildChannelHandlers): ChildChannel {
  let open = true;
  let offered = false;
  let takesBatches = false;
  let queued: string[] = [];
  let queuedChars = 0;
  /**
   * Counted from `send` until Node has written the IPC message: Node exposes no byte count of its
   * IPC queue, but calls a send's callback once the message is written (or the channel is gone).
   */
  let queuedBytes = 0;
  // The process ending while messages are in flight is reported by its `close` event.
  const sent = (chars: number) => (err: Error | null) => {
    queuedBytes -= chars;
    if (err) open = open && child.connected;
  };
  const flush = () => {
    const batch = queued;
    const chars = queuedChars;
    queued = [];
    queuedChars = 0;
    if (!open || !child.connected) {
      queuedBytes -= chars;
      return;
    }
    if (takesBatches && batch.length > 1) child.send(batch, sent(chars));
    else for (const json of batch) child.send(json, sent(json.length));
  };
  const onMessage = (value: unknown) => {
    if (!open) return;
    if (!Array.isArray(value)) return handlers.onMessage(value);
    takesBatches = true;
    for (const item of value) if (open) handlers.onMessage(item);
  };
  child.on("message", onMessage);
  return {
    send(json) {
      if (!open || !child.connected) return false;
      if (!offered) {
        offered = true;
        json = withBatchOffer(json);
      }
      queuedChars += json.length;
      queuedBytes += json.length;
      if (queued.push(json) === 1) atTurnEnd(flush);
      return true;
    },
    get queuedBytes() {
      return queuedBytes;
    },
    close() {
      open = false;
      child.off("message", onMessage);
    },
  };
}

/** NDJSON over stdio: one JSON object per line in both directions. */
export function lineChannel(child: ChildProcess, handlers: ChildChannelHandlers): ChildChannel {
  let open = true;
  const splitter = new LineSplitter({
    maxLineLength: MAX_LINE_LENGTH,
    onLine(line) {
      if (!open || line.trim() === "") return;
      let value: unknown;
      try {
        value = JSON.parse(line);
      } catch {
        handlers.onGarbage(`stdout line is not JSON: ${line.slice(0, 200)}`);
        return;
      }
      handlers.onMessage(value);
    },
    onOversized(length) {
      handlers.onGarbage(`stdout line longer than ${MAX_LINE_LENGTH} characters dropped (${length}+)`);
    },
  });
  child.stdout?.on("data", (chunk: Buffer) => splitter.push(chunk));
  child.stdout?.on("end", () => splitter.end());
  // EPIPE after the process died: its `close` event reports the end.
  child.stdin?.on("error", () => {
    open = false;
  });
  /**
   * Counted from `send` until the write's callback: the stream's own `writableLength` leaves out
   * a write Node has handed to the pipe and that waits there for the process to read.
   */
  let queuedBytes = 0;
  return {
    send(json) {
      const stdin = child.stdin;
      if (!open || !stdin || stdin.destroyed) return false;
      corkUntilTurnEnd(stdin);
      const chars = json.length + 1;
      queuedBytes += chars;
      stdin.write(json + "\n", () => (queuedBytes -= chars));
      return true;
    },
    get queuedBytes() {
      return queuedBytes;
    },
    close() {
      open = false;
      child.stdin?.end();
    },
  };
}
