/**
 * One event's text encoded once for all the connections a fanout writes it to: ws would
 * otherwise measure and encode the same string again for each (in `send` and in the socket's
 * write). Only while a fanout is being delivered, and only for that event's text.
 */

let shared: string | undefined;
let bytes: Buffer | undefined;

/** `text` is about to go to several connections: frameOf encodes it once, until endShared. */
export function beginShared(text: string): void {
  shared = text;
  bytes = undefined;
}

export function endShared(): void {
  shared = undefined;
  bytes = undefined;
}

/** What to hand ws.send for `text`: its shared bytes while it is the shared event, else the text itself. */
export function frameOf(text: string): string | Buffer {
  if (text !== shared) return text;
  return (bytes ??= Buffer.from(text, "utf8"));
}
