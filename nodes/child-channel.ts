/**
 * The two transports of the task protocol behind one interface: Node IPC for `module` tasks and
 * NDJSON on stdin/stdout for `command` tasks. The node always hands a channel JSON text, so a
 * client's message can be forwarded without being parsed (see bus-messages.ts).
 */
import type { ChildProcess } from "node:child_process";
import { LineSplitter } from "./line-splitter.js";

/** Longest line accepted from a command task's stdout. */
export const MAX_LINE_LENGTH = 1024 * 1024;

export interface ChildChannelHandlers {
  /** A decoded message from the service (not yet validated). */
  onMessage(value: unknown): void;
  /** Something the service wrote that is not a message (bad JSON, oversized line). */
  onGarbage(problem: string): void;
}

/** Sends JSON text to a service and decodes what it sends back. */
export interface ChildChannel {
  /** Sends one message given as JSON text. Returns false once the channel is gone. */
  send(json: string): boolean;
  /** Stops delivering and sending (the process is ending). */
  close(): void;
}

/** Node IPC: JSON text is sent as a string; the service SDK parses it. */
export function ipcChannel(child: ChildProcess, handlers: ChildChannelHandlers): ChildChannel {
  let open = true;
  const onMessage = (value: unknown) => {
    if (open) handlers.onMessage(value);
  };
  child.on("message", onMessage);
  return {
    send(json) {
      if (!open || !child.connected) return false;
      child.send(json, (err) => {
        // The process ending while messages are in flight is reported by its `close` event.
        if (err) open = open && child.connected;
      });
      return true;
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
  return {
    send(json) {
      if (!open || !child.stdin || child.stdin.destroyed) return false;
      child.stdin.write(json + "\n");
      return true;
    },
    close() {
      open = false;
      child.stdin?.end();
    },
  };
}
