/**
 * The Servman side of the relay, launch and density benchmarks: the smallest useful `module` task,
 * built on the service SDK exactly as a user would write it. `echo` answers the sender only;
 * `shout` sends to every member.
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
}

runService(BenchEcho);
