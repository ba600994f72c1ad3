/**
 * Batching over Node IPC, an extension of the task protocol ([task-protocol.md](../../docs/task-protocol.md#batching-node-ipc)):
 * one IPC message can carry a JSON array of messages, so a burst costs one write and one read
 * instead of one per message. Each side sends arrays only once the other has said it reads them:
 * the node offers it in `start` (`"batch":true`), the service answers by sending an array.
 * A service that never sends an array never receives one.
 */

/** `start` as the node builds it begins so (JSON.stringify keeps key order: `type` first). */
const START_PREFIX = '{"type":"start",';

/** The `start` message, given as JSON text, with the node's offer to take and send batches. */
export function withBatchOffer(startJson: string): string {
  return startJson.startsWith(START_PREFIX) ? `${START_PREFIX}"batch":true,${startJson.slice(START_PREFIX.length)}` : startJson;
}

/** True when a decoded node message is a `start` that offers batches. */
export function offersBatches(message: { type?: unknown; batch?: unknown }): boolean {
  return message.type === "start" && message.batch === true;
}
