/**
 * A gateway's client connections batch the frames of one event-loop turn into one socket write
 * (gateway/tick-corked-sends.ts): a real ws server and client on 127.0.0.1, checking that frames
 * sent in one turn (over several ticks) are held until the turn ends, that a large burst is written out early, and
 * that every frame arrives, in order.
 */
import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { after, before, describe, it } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { corkSendsPerTick } from "../gateway/tick-corked-sends.js";
import { eventually } from "./helpers/processes.js";

describe("frames of one event-loop turn leave together", () => {
  let wss: WebSocketServer;
  let server: WebSocket;
  let client: WebSocket;
  const received: string[] = [];

  before(async () => {
    wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false });
    await new Promise<void>((resolve) => wss.once("listening", () => resolve()));
    const connected = new Promise<WebSocket>((resolve) => wss.once("connection", (ws) => resolve(ws)));
    client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}/`, { perMessageDeflate: false });
    client.on("message", (data) => received.push(data.toString()));
    server = await connected;
    corkSendsPerTick(server);
  });
  after(async () => {
    client.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
  });

  const socket = () => (server as unknown as { _socket: Socket })._socket;
  const arrived = (count: number) => eventually(() => received.length >= count, `${count} frames to arrive`);

  it("holds small frames until the end of the event-loop turn, then delivers them in order", async () => {
    received.length = 0;
    for (let i = 0; i < 100; i++) server.send(`frame-${i}`);
    assert.equal(socket().writableCorked, 1, "corked for the rest of the turn");
    assert.ok(server.bufferedAmount > 0, "the frames wait in the socket");
    // A later tick of the same turn (another I/O callback's) joins the same write.
    await new Promise((resolve) => process.nextTick(resolve));
    server.send("frame-100");
    assert.equal(socket().writableCorked, 1, "still corked in a later tick of the turn");
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(socket().writableCorked, 0, "written out at the end of the turn");
    await arrived(101);
    assert.deepEqual(
      received,
      Array.from({ length: 101 }, (_, i) => `frame-${i}`),
    );
  });

  it("writes a large burst out before the turn ends", async () => {
    received.length = 0;
    const big = "x".repeat(40 * 1024);
    server.send(`a${big}`);
    assert.equal(socket().writableCorked, 1);
    server.send(`b${big}`);
    assert.equal(socket().writableCorked, 0, "past 64 KiB the socket is uncorked at once");
    server.send(`c${big}`);
    await arrived(3);
    assert.deepEqual(
      received.map((f) => f[0]),
      ["a", "b", "c"],
    );
  });
});
