/**
 * Minimal WebSocket clients for the load generator. They speak raw text so the client side costs
 * the same for Servman and for its floor: setup requests are parsed, but on the hot path frames are
 * only counted and timed, never parsed.
 */
import { WebSocket, type RawData } from "ws";

/** A connection the relay load can drive: send text, get every incoming frame. */
export interface TextPipe {
  send(text: string): void;
  /** Every incoming frame goes to `handler` unparsed (null: back to request/reply mode). */
  onFrame(handler: ((data: RawData) => void) | null): void;
  /** Closes with 1000 and resolves once closed (or after 5 s, then terminates). */
  close(): Promise<void>;
  /** Drops the TCP connection at once. */
  terminate(): void;
}

/**
 * Opens a WebSocket and resolves once it is open. `attach` runs before the handshake: a server
 * that speaks first (Servman's welcome) can have its first frame arrive in the same read as the
 * upgrade response, and ws emits it synchronously right after "open", before any continuation.
 */
export function openWebSocket(url: string, timeoutMs = 30_000, attach?: (ws: WebSocket) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    // perMessageDeflate off on both sides: compression would be measured instead of the relay.
    const ws = new WebSocket(url, { perMessageDeflate: false, handshakeTimeout: timeoutMs });
    attach?.(ws);
    const fail = (err: Error) => {
      ws.terminate();
      reject(err);
    };
    ws.once("open", () => {
      ws.off("error", fail);
      // Later errors surface as a close; an unhandled "error" event would crash the benchmark.
      ws.on("error", () => {});
      resolve(ws);
    });
    ws.once("error", fail);
  });
}

function closeSocket(ws: WebSocket): Promise<void> {
  if (ws.readyState === WebSocket.CLOSED) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      ws.terminate();
      resolve();
    }, 5_000);
    ws.once("close", () => {
      clearTimeout(timer);
      resolve();
    });
    ws.close(1000);
  });
}

type Frame = Record<string, unknown>;

/** A Servman client speaking the wire protocol directly (docs/protocol.md). */
export class ServmanWire implements TextPipe {
  session = "";
  private nextId = 1;
  private raw: ((data: RawData) => void) | null = null;
  private readonly pending = new Map<string, { resolve(f: Frame): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  private welcomed: ((f: Frame) => void) | null = null;
  /** Settles with the welcome frame. */
  private readonly welcome: Promise<Frame>;

  private constructor(readonly ws: WebSocket) {
    this.welcome = new Promise((resolve) => (this.welcomed = resolve));
    ws.on("message", (data: RawData) => {
      if (this.raw) return this.raw(data);
      let frame: Frame;
      try {
        frame = JSON.parse(data.toString()) as Frame;
      } catch {
        return;
      }
      if (frame.type === "welcome" && this.welcomed) {
        this.welcomed(frame);
        this.welcomed = null;
        return;
      }
      const id = typeof frame.id === "string" ? frame.id : undefined;
      const waiter = id === undefined ? undefined : this.pending.get(id);
      if (!waiter) return;
      this.pending.delete(id!);
      clearTimeout(waiter.timer);
      if (frame.type === "error") waiter.reject(new Error(`${String(frame.code)}: ${String(frame.message)}`));
      else waiter.resolve(frame);
    });
    ws.on("close", () => {
      for (const w of this.pending.values()) {
        clearTimeout(w.timer);
        w.reject(new Error("connection closed"));
      }
      this.pending.clear();
    });
  }

  /** Connects and resolves once the gateway's welcome arrived (the session is subscribed). */
  static async connect(url: string, timeoutMs = 30_000): Promise<ServmanWire> {
    let client!: ServmanWire;
    const ws = await openWebSocket(url, timeoutMs, (socket) => (client = new ServmanWire(socket)));
    const welcome = await new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no welcome within ${timeoutMs} ms`)), timeoutMs);
      void client.welcome.then((f) => (clearTimeout(timer), resolve(f)));
      ws.once("close", () => (clearTimeout(timer), reject(new Error("closed before the welcome"))));
    });
    client.session = String(welcome.session);
    return client;
  }

  /** Sends `frame` with a fresh id; resolves with the reply carrying it, rejects on an error frame. */
  request(frame: Frame, timeoutMs = 120_000): Promise<Frame> {
    const id = `b${this.nextId++}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no reply to ${String(frame.type)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  send(text: string): void {
    this.ws.send(text);
  }

  onFrame(handler: ((data: RawData) => void) | null): void {
    this.raw = handler;
  }

  close(): Promise<void> {
    return closeSocket(this.ws);
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** A plain WebSocket as a TextPipe (the floors' clients). */
export class PlainWire implements TextPipe {
  private handler: ((data: RawData) => void) | null = null;

  constructor(readonly ws: WebSocket) {
    ws.on("message", (data: RawData) => this.handler?.(data));
  }

  /**
   * Connects and, when `greeting` is true, waits for the server's first frame: the floor relay
   * sends one once the session channel is subscribed, as Servman's welcome does.
   */
  static async connect(url: string, greeting: boolean, timeoutMs = 30_000): Promise<PlainWire> {
    let greeted!: Promise<void>;
    const ws = await openWebSocket(url, timeoutMs, (socket) => {
      greeted = new Promise((resolve) => socket.once("message", () => resolve()));
    });
    if (greeting) {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no greeting within ${timeoutMs} ms`)), timeoutMs)));
      await Promise.race([greeted, late]).finally(() => clearTimeout(timer));
    }
    return new PlainWire(ws);
  }

  send(text: string): void {
    this.ws.send(text);
  }

  onFrame(handler: ((data: RawData) => void) | null): void {
    this.handler = handler;
  }

  close(): Promise<void> {
    return closeSocket(this.ws);
  }

  terminate(): void {
    this.ws.terminate();
  }
}
