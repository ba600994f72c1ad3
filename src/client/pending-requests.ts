/**
 * The client's requests waiting for their reply, by id: each settles on the frame answering it
 * (an `error` frame rejects with its code), on its timeout, or when the connection closes (but a
 * kept one, a numbered checked send, waits for the resume: outbox.ts).
 */
import { ServmanError, isErrorCode } from "../errors.js";
import type { RequestId } from "../protocol/client-messages.js";

interface Pending {
  resolve(frame: Record<string, unknown>): void;
  reject(err: ServmanError): void;
  timer: ReturnType<typeof setTimeout>;
  kept: boolean;
}

export class PendingRequests {
  private readonly pending = new Map<RequestId, Pending>();
  private nextId = 1;

  /** Sends a request with a new id through `send`; resolves with its reply, or rejects (`timeout`, or the error). */
  send(frame: Record<string, unknown>, timeoutMs: number, send: (text: string) => void): Promise<Record<string, unknown>> {
    const { id, reply } = this.expect(String(frame.type), timeoutMs);
    send(JSON.stringify({ ...frame, id }));
    return reply;
  }

  /**
   * A new request id and the promise its reply settles, for a request the caller writes itself.
   * `kept`: not rejected when the connection closes.
   */
  expect(type: string, timeoutMs: number, kept = false): { id: RequestId; reply: Promise<Record<string, unknown>> } {
    const id = this.nextId++;
    const reply = new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ServmanError("timeout", `no reply to ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, kept });
    });
    return { id, reply };
  }

  /** Settles request `id`, if it still waits, with `reply` (or rejects it with `err`). */
  settleId(id: RequestId, reply: Record<string, unknown> | ServmanError): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    clearTimeout(p.timer);
    if (reply instanceof ServmanError) p.reject(reply);
    else p.resolve(reply);
  }

  /** Settles the request `frame` answers; false when it answers none (not a reply). */
  settle(frame: Record<string, unknown>): boolean {
    const id = frame.id as RequestId | undefined;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) return false;
    this.pending.delete(id!);
    clearTimeout(p.timer);
    if (frame.type === "error") {
      const code = isErrorCode(frame.code) ? frame.code : "internal";
      p.reject(new ServmanError(code, typeof frame.message === "string" ? frame.message : code));
    } else {
      p.resolve(frame);
    }
    return true;
  }

  /** The connection closed: every request still waiting fails with `err`, but kept ones unless `all`. */
  rejectAll(err: ServmanError, all = false): void {
    for (const [id, p] of this.pending) {
      if (p.kept && !all) continue;
      clearTimeout(p.timer);
      this.pending.delete(id);
      p.reject(err);
    }
  }
}
