/**
 * The protocol between a node and one shared host process (task `isolation: "shared"`,
 * docs/task-protocol.md#shared-isolation): the task protocol of every instance in the host over
 * its one Node IPC channel, each message tagged with the instance's slot, a small number the node
 * gives it in that host (never reused there, so a late message cannot reach a newer instance).
 *
 * Node to host: strings (a tick's several in one array): `<slot> <json>`, one task-protocol message
 * for the instance in `slot`, its JSON text forwarded as the node has it; `<slot>:drop`, end that
 * instance now; `exit`, exit now (the host has no instance left). Host to node: always arrays (so the node batches from the first one), of
 * {@link HostItem}s.
 */
import type { ServiceToNode } from "./task-messages.js";

/** A line a host's instance wrote: 1 stdout, 2 stderr. */
export type HostStream = 1 | 2;

/** One item of a host's output. */
export type HostItem =
  /** A message of the instance in slot `i`. */
  | { i: number; m: ServiceToNode }
  /** A line instance `i` wrote (`console.log` and the like, traced to it). */
  | { i: number; o: HostStream; t: string }
  /** Instance `i` is over: its service stopped, shut down or failed (`e`, its exit code). */
  | { i: number; e: number }
  /** A line the host wrote for an instance that is already over: the node's log only. */
  | { o: HostStream; t: string };

/** Node to host: `json` for the instance in `slot`. */
export function toSlot(slot: number, json: string): string {
  return `${slot} ${json}`;
}

/** Node to host: end the instance in `slot` now. */
export function dropSlot(slot: number): string {
  return `${slot}:drop`;
}

/** Node to host: exit now. */
export const HOST_EXIT = "exit";

/** What the host makes of one string from its node. */
export type ToHost = { slot: number; json: string } | { slot: number; drop: true } | { exit: true };

/** Decodes one string from the node, or null when it has none of the forms. */
export function decodeToHost(text: string): ToHost | null {
  if (text === HOST_EXIT) return { exit: true };
  let end = 0;
  while (end < text.length && text.charCodeAt(end) >= 48 && text.charCodeAt(end) <= 57) end++;
  if (end === 0 || end > 15) return null;
  const slot = Number(text.slice(0, end));
  if (text[end] === " ") return { slot, json: text.slice(end + 1) };
  return text.slice(end) === ":drop" ? { slot, drop: true } : null;
}

/** Lines longer than this are replaced by a marker, as the node does for a process's own output. */
export const MAX_HOST_LINE = 16 * 1024;
