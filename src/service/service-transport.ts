/**
 * The child side of the task protocol's two transports: Node IPC when the node forked us
 * (`module` tasks), NDJSON on stdin/stdout otherwise. Either way the process exits when its node
 * goes away (IPC disconnect, stdin EOF), so a dead node leaves no orphan.
 */
import { createInterface } from "node:readline";
import type { NodeToService, ServiceToNode } from "../protocol/task-messages.js";

export interface ServiceTransport {
  send(message: ServiceToNode): Promise<void>;
  /** Called for each message from the node, in order. */
  onMessage(handler: (message: NodeToService) => void): void;
  /** Called once when the node is gone. */
  onDisconnect(handler: () => void): void;
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

/** Picks IPC when this process has an IPC channel, else stdio. */
export function connectTransport(): ServiceTransport {
  if (typeof process.send === "function") {
    return {
      send: (message) =>
        new Promise((resolve) => {
          if (!process.connected) return resolve();
          process.send!(message, undefined, {}, () => resolve());
        }),
      onMessage: (handler) => process.on("message", (value) => {
        const message = decode(value);
        if (message) handler(message);
      }),
      onDisconnect: (handler) => process.once("disconnect", handler),
    };
  }
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
  return {
    send: (message) =>
      new Promise((resolve) => {
        process.stdout.write(JSON.stringify(message) + "\n", () => resolve());
      }),
    onMessage: (handler) => lines.on("line", (line) => {
      const message = decode(line);
      if (message) handler(message);
    }),
    onDisconnect: (handler) => lines.once("close", handler),
  };
}
