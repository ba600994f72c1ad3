/**
 * The Colyseus 0.18 server bench/peer.ts measures: `@colyseus/core`'s Server on its
 * WebSocketTransport (the default transport, on `ws`), one room type `peer` (colyseus-room.ts), in
 * a process of its own so its CPU and memory are read apart from the clients'. With a Redis URL,
 * it runs as a scaled deployment would: RedisPresence and RedisDriver on that Redis.
 *
 * Usage (forked by the benchmark): colyseus-server.js [redis-url]
 */
import type { AddressInfo } from "node:net";
import { Server, matchMaker, type ServerOptions } from "@colyseus/core";
import { WebSocketTransport } from "@colyseus/ws-transport";
import { RedisDriver } from "@colyseus/redis-driver";
import { RedisPresence } from "@colyseus/redis-presence";
import { sleep } from "../lib/concurrency.js";
import { reportReady, serveRequests } from "../lib/script-side.js";
import { PeerRoom } from "./colyseus-room.js";

const redisUrl = process.argv[2];
const transport = new WebSocketTransport();
// Shutdown is the script's (serveRequests below), so Colyseus registers no signal handlers.
const options: ServerOptions = { transport, greet: false, gracefullyShutdown: false };
if (redisUrl) {
  options.presence = new RedisPresence(redisUrl);
  options.driver = new RedisDriver(redisUrl);
}
const server = new Server(options);
server.define("peer", PeerRoom);
await server.listen(0, "127.0.0.1");
const port = (transport.server!.address() as AddressInfo).port;
/** Rooms made by `createRooms`, by id. */
const kept: string[] = [];

serveRequests(
  {
    /** Creates `count` rooms that stay up with no client; answers how many were created. */
    async createRooms(params) {
      const count = Number(params.count);
      for (let i = 0; i < count; i++) kept.push((await matchMaker.createRoom("peer", { keep: true })).roomId);
      return count;
    },
    /** Disposes of the rooms `createRooms` made. */
    async disposeRooms() {
      const ids = kept.splice(0);
      await Promise.all(ids.map((id) => matchMaker.getLocalRoomById(id)?.disconnect()));
      return ids.length;
    },
    /** Full garbage collections (the process runs with --expose-gc), before memory is read; the second after V8 had time to return freed pages. */
    async gc() {
      globalThis.gc?.();
      await sleep(300);
      globalThis.gc?.();
      return globalThis.gc !== undefined;
    },
  },
  () => server.gracefullyShutdown(false),
);
reportReady({ url: `http://127.0.0.1:${port}` });
