/**
 * HTTP over a bare TCP socket, for requests no HTTP client library will send: malformed targets,
 * forged Host headers, request heads that never end, bodies that never stop.
 */
import { connect, type Socket } from "node:net";

export interface RawResponse {
  /** The status code of the first response, or 0 when none came. */
  status: number;
  /** Header names lowercased; the first response's only. */
  headers: Record<string, string>;
  body: string;
  /** Everything received. */
  raw: string;
}

/** Opens a TCP connection to 127.0.0.1:`port` and resolves once it is connected. */
export function openSocket(port: number, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Parses the first response out of `raw` (its body: whatever follows the head). */
export function parseResponse(raw: string): RawResponse {
  const end = raw.indexOf("\r\n\r\n");
  const head = end < 0 ? raw : raw.slice(0, end);
  const [statusLine = "", ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(":");
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0);
  return { status, headers, body: end < 0 ? "" : raw.slice(end + 4), raw };
}

/** Resolves with everything `socket` receives until it closes (from either side). */
export function readUntilClosed(socket: Socket): Promise<string> {
  return new Promise((resolve) => {
    let raw = "";
    socket.on("data", (d: Buffer) => (raw += d.toString("latin1")));
    socket.on("error", () => {});
    socket.once("close", () => resolve(raw));
  });
}

/**
 * Sends `request` verbatim (it should say `Connection: close`) and resolves with the response
 * once the server closes the connection.
 */
export async function rawRequest(port: number, request: string): Promise<RawResponse> {
  const socket = await openSocket(port);
  const closed = readUntilClosed(socket);
  socket.write(request);
  return parseResponse(await closed);
}

/** A GET (or `method`) for `target` with the given Host header and extra header lines. */
export function requestText(target: string, options: { method?: string; host?: string | null; headers?: string[]; body?: string } = {}): string {
  const lines = [`${options.method ?? "GET"} ${target} HTTP/1.1`];
  if (options.host !== null) lines.push(`Host: ${options.host ?? "127.0.0.1"}`);
  lines.push(...(options.headers ?? []), "Connection: close");
  if (options.body !== undefined) lines.push(`Content-Length: ${Buffer.byteLength(options.body)}`);
  return `${lines.join("\r\n")}\r\n\r\n${options.body ?? ""}`;
}
