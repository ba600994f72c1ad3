/**
 * The Servman side of bench/peer.ts: the room as a `module` task on the service SDK, with the same
 * logic as the Colyseus room (colyseus-room.ts). `echo` answers the sender, `bcast` goes to every
 * member.
 */
import { Service, action, runService } from "../../src/service/service.js";

class PeerRoom extends Service {
  @action()
  echo(client: string, data: unknown): void {
    this.send(client, "echo", data);
  }

  @action()
  bcast(_client: string, data: unknown): void {
    this.broadcast("bcast", data);
  }
}

runService(PeerRoom);
