/**
 * The Colyseus side of bench/peer.ts: the room, with the same logic as the Servman room (the
 * bench echo service, services/echo-service.ts). `echo` answers the sender, `bcast` goes to every
 * client in the room. Rooms
 * created with `{keep: true}` stay up without clients (the memory measure), as Servman instances do.
 */
import { Room, type Client } from "@colyseus/core";

/** What `onCreate` reads from the create options. */
export interface PeerRoomOptions {
  keep?: boolean;
}

export class PeerRoom extends Room {
  override onCreate(options: PeerRoomOptions): void {
    if (options.keep === true) this.autoDispose = false;
    this.onMessage("echo", (client: Client, data: unknown) => client.send("echo", data));
    this.onMessage("bcast", (_client: Client, data: unknown) => this.broadcast("bcast", data));
  }
}
