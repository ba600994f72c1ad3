/**
 * The heartbeat service: answers every `ping` with a `pong` carrying the same data.
 * A `module` task: the node forks this file and talks to it over Node IPC.
 */
import { Service, action, runService } from "../../src/service/service.js";

export class HeartbeatService extends Service {
  private pings = 0;

  @action()
  ping(client: string, data: unknown): void {
    this.pings++;
    this.send(client, "pong", data);
  }

  /** Stats for whoever asks (used by the tour in the README). */
  @action()
  stats(client: string): void {
    this.send(client, "stats", { pings: this.pings, clients: this.clients.size });
  }
}

runService(HeartbeatService);
