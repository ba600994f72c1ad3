/**
 * The Servman side of the relay, launch, density and peer benchmarks: the smallest useful `module`
 * task, built on the service SDK exactly as a user would write it. `echo` answers the sender only;
 * `shout` and `bcast` send to every member.
 */
import { Service, action, runService } from "../../src/service/service.js";

class BenchEcho extends Service {
  @action()
  echo(client: string, data: unknown): void {
    this.send(client, "echo", data);
  }

  /** To every member (the broadcast the redis-cost benchmark counts). */
  @action()
  shout(_client: string, data: unknown): void {
    this.broadcast("shout", data);
  }

  /** To every member: the peer benchmark's broadcast, named as in its Colyseus room (peer/colyseus-room.ts). */
  @action()
  bcast(_client: string, data: unknown): void {
    this.broadcast("bcast", data);
  }
}

runService(BenchEcho);
