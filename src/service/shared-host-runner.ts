/**
 * A shared host process (task `isolation: "shared"`, docs/task-protocol.md#shared-isolation).
 * The node forks this file with the task's module path as its one argument. It imports the
 * module, which calls `runService(MyService)` as usual: the SDK hands the class to this host
 * (shared-host-hook.ts) rather than running it. For each instance the node then places here
 * (a `start` for a new slot), the host constructs one object of the class and runs it on a
 * transport of its own; each object sees exactly the task protocol it would see in a process of
 * its own, and ending it (`stop`, `shutdown`, a failed `onStart`) ends that object only.
 *
 * Like any instance process, the host exits when its node goes away (IPC disconnect).
 */
import { pathToFileURL } from "node:url";
import { decodeToHost } from "../protocol/shared-host-messages.js";
import type { NodeToService } from "../protocol/task-messages.js";
import { HostOutput, type Slot } from "./shared-host-output.js";
import { installSharedHostHook, type HostedTransport } from "./shared-host-hook.js";

/** What the host needs of the registered class: a `Service` subclass. */
type ServiceClass = new () => { run(transport: HostedTransport): void };

interface Room extends Slot {
  onMessage?: (message: NodeToService) => void;
  readonly onDisconnect: (() => void)[];
}

const DONE = Promise.resolve();
const output = new HostOutput();
const rooms = new Map<number, Room>();
let serviceClass: ServiceClass | undefined;
/** What the node sent before the module had loaded, in order. */
let early: unknown[] | undefined = [];

function transportFor(room: Room): HostedTransport {
  return {
    send(message) {
      output.message(room, message);
      // Written in order on the host's one channel: nothing waits for an individual write.
      return DONE;
    },
    onMessage: (handler) => (room.onMessage = handler),
    onDisconnect: (handler) => room.onDisconnect.push(handler),
    get pending() {
      return room.pending;
    },
    get writable() {
      return output.writable;
    },
    drained: () => output.drained(),
    end: (code) => close(room, code),
  };
}

function close(room: Room, code: number): void {
  if (room.ended) return;
  rooms.delete(room.slot);
  output.end(room, code);
}

function decode(json: string): NodeToService | null {
  try {
    const value: unknown = JSON.parse(json);
    return typeof value === "object" && value !== null ? (value as NodeToService) : null;
  } catch {
    return null;
  }
}

/** A `start` for a slot the host does not run yet: a new object of the service class. */
function open(slot: number, message: NodeToService): void {
  const room: Room = { slot, ended: false, pending: 0, partial: ["", ""], onDisconnect: [] };
  rooms.set(slot, room);
  output.current.run(room, () => {
    try {
      new serviceClass!().run(transportFor(room));
    } catch (err) {
      process.stderr.write(`servman shared host: could not create the service: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      return close(room, 1);
    }
    room.onMessage?.(message);
  });
}

function receive(value: unknown): void {
  if (early) return void early.push(value);
  if (typeof value !== "string") return;
  const decoded = decodeToHost(value);
  if (!decoded) return;
  if ("exit" in decoded) return process.exit(0);
  const room = rooms.get(decoded.slot);
  if ("drop" in decoded) {
    if (!room) return;
    // The service's own end path runs (its heartbeat stops), then the slot is over whatever it did.
    for (const handler of room.onDisconnect) output.current.run(room, handler);
    return close(room, 0);
  }
  const message = decode(decoded.json);
  if (!message) return;
  if (room) output.current.run(room, () => room.onMessage?.(message));
  else if (message.type === "start") open(decoded.slot, message);
}

async function main(): Promise<void> {
  const modulePath = process.argv[2];
  process.on("disconnect", () => process.exit(0));
  process.on("message", (value: unknown) => (Array.isArray(value) ? value.forEach(receive) : receive(value)));
  output.captureStreams();
  installSharedHostHook({
    register(service) {
      if (typeof service !== "function") {
        throw new TypeError('in a shared host (task isolation "shared") runService takes the service class, not an object: the host constructs one object per instance');
      }
      if (serviceClass) throw new TypeError("runService was called twice in one module");
      serviceClass = service as ServiceClass;
    },
  });
  if (!modulePath) throw new TypeError("the shared host needs the task's module path as its argument");
  await import(pathToFileURL(modulePath).href);
  if (!serviceClass) throw new TypeError(`${modulePath} did not call runService(ServiceClass): a shared task's module must`);
  const waiting = early ?? [];
  early = undefined;
  waiting.forEach(receive);
}

main().catch((err: unknown) => {
  // Before any instance ran: the node reads this on the host's stderr and fails the launches placed here.
  process.stderr.write(`servman shared host: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
