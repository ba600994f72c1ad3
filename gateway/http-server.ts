/**
 * The gateway's HTTP (or, with `gateway.tls`, HTTPS) server: the HTTP API behind the request
 * guard, every accepted socket counted, WebSocket upgrades handed to the gateway.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { Duplex } from "node:stream";
import type { GatewayLimits } from "../src/config/options.js";
import { handleHttp, type HttpApiContext } from "./http-api.js";
import type { RequestGuard } from "./request-guard.js";
import { serverTimeouts, type SocketGuard } from "./socket-guard.js";

/** What the server is built from. */
export interface GatewayServerOptions {
  /** Certificate and key, for HTTPS; absent: plain HTTP. */
  tlsFiles: { cert: Buffer; key: Buffer } | undefined;
  limits: Pick<GatewayLimits, "headersTimeoutMs">;
  api: HttpApiContext;
  guard: RequestGuard;
  sockets: SocketGuard;
  onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void;
}

/** Creates the server; it listens once {@link listenOn} is called. */
export function createGatewayServer(options: GatewayServerOptions): Server | HttpsServer {
  const { tlsFiles, api, guard, sockets } = options;
  const onRequest = (req: IncomingMessage, res: ServerResponse) => guard.http(res, () => handleHttp(api, req, res));
  const timeouts = serverTimeouts(options.limits);
  const server = tlsFiles ? createHttpsServer({ ...tlsFiles, ...timeouts }, onRequest) : createServer(timeouts, onRequest);
  server.on("connection", (socket: Socket) => sockets.accept(socket));
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => options.onUpgrade(req, socket, head));
  return server;
}

/** Binds `host` and `port` (0 picks a free port); rejects when the bind fails. */
export async function listenOn(server: Server | HttpsServer, port: number, host: string): Promise<AddressInfo> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return server.address() as AddressInfo;
}
