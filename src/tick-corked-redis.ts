/**
 * A Redis connection whose commands of one event-loop turn leave in one socket write. A relay
 * publishes many small messages per turn (a burst of frames, a broadcast): one `write` syscall each is most
 * of what they cost. ioredis's auto-pipelining batches too, but through a pipeline object, a
 * promise chain and a `setImmediate` per batch, which costs more CPU than the syscalls it saves
 * and delays a lone command by an event-loop turn. Corking the socket until the end of the turn
 * batches the writes with none of that: each command is written as usual, in order, and the
 * socket sends them together once the current turn's callbacks have run (src/tick-cork.ts).
 */
import { Redis } from "ioredis";
import { corkUntilTurnEnd } from "./tick-cork.js";

type SendCommand = Redis["sendCommand"];

export class TickCorkedRedis extends Redis {
  override sendCommand(...[command, stream]: Parameters<SendCommand>): ReturnType<SendCommand> {
    // Only direct writes on a ready socket: queued commands are written when ioredis reconnects.
    if (stream === undefined && this.status === "ready" && this.stream) corkUntilTurnEnd(this.stream);
    return super.sendCommand(command, stream);
  }
}
