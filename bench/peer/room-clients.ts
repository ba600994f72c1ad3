/**
 * One client joined to one room, on each system's own client SDK (Servman's `ServmanClient`,
 * Colyseus's `@colyseus/sdk`), behind one shape the workloads drive: `send` an echo and hear it
 * back, `broadcast` and hear every broadcast with its payload.
 */
import type { Room } from "@colyseus/sdk";
import type { ServmanClient } from "../../src/client/servman-client.js";
import type { LoadPipe } from "../lib/relay-load.js";

/** The payload of every echo and broadcast, on both systems. */
export interface PeerPayload {
  seq: number;
}

/** A client in one room: `send` is an `echo` (its reply calls the `onFrame` handler). */
export interface RoomClient extends LoadPipe<PeerPayload> {
  /** Sends `bcast`: the room sends the payload to every client in it, this one included. */
  broadcast(payload: PeerPayload): void;
  /** Called with every `bcast` received (null: stop listening). */
  onBroadcast(handler: ((payload: PeerPayload) => void) | null): void;
  /** Leaves the room and closes the connection. */
  close(): Promise<void>;
}

/** A Servman client joined to `instance` (its only room: the handlers hear every instance). */
export function servmanRoomClient(client: ServmanClient, instance: string): RoomClient {
  let echo: (() => void) | null = null;
  let bcast: ((payload: PeerPayload) => void) | null = null;
  client.handle("echo", () => echo?.());
  client.handle("bcast", (_instance, data) => bcast?.(data as PeerPayload));
  return {
    send: (payload) => client.send(instance, "echo", payload),
    onFrame: (handler) => (echo = handler),
    broadcast: (payload) => client.send(instance, "bcast", payload),
    onBroadcast: (handler) => (bcast = handler),
    close: () => client.close(),
  };
}

/** A Colyseus room connection (each one is a WebSocket of its own). */
export function colyseusRoomClient(room: Room): RoomClient {
  let echo: (() => void) | null = null;
  let bcast: ((payload: PeerPayload) => void) | null = null;
  room.onMessage("echo", () => echo?.());
  room.onMessage("bcast", (data: PeerPayload) => bcast?.(data));
  return {
    send: (payload) => room.send("echo", payload),
    onFrame: (handler) => (echo = handler),
    broadcast: (payload) => room.send("bcast", payload),
    onBroadcast: (handler) => (bcast = handler),
    close: async () => {
      await room.leave(true);
    },
  };
}
