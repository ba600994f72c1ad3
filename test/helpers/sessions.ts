/** Reaching a gateway's sessions from a test: cutting one's socket, recording a raw client's frames. */
import assert from "node:assert/strict";
import type { Gateway } from "../../gateway/gateway.js";
import type { RawClient } from "./cluster.js";
import { eventually } from "./processes.js";

/** Cuts a session's socket on the gateway's side (the client sees 1006) and waits until the gateway let it go. */
export async function cut(gateway: Gateway, session: string): Promise<void> {
  const sessions = gateway["sessions"];
  const held = [...sessions.values()].find((s) => s.id === session);
  assert.ok(held, `gateway holds session ${session}`);
  held["ws"].terminate();
  await eventually(() => ![...sessions.values()].includes(held), "the gateway to let the session go");
}

/** Frames a raw client receives from now on. */
export function record(client: RawClient): Record<string, any>[] {
  const frames: Record<string, any>[] = [];
  client.ws.on("message", (data: Buffer) => frames.push(JSON.parse(data.toString()) as Record<string, any>));
  return frames;
}
