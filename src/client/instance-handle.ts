/**
 * One instance as seen by a client (`client.instance(id)`): handlers that hear only that
 * instance's messages, and its requests without repeating its id.
 */
import { duplicateHandler, type HandleOptions } from "../actions.js";

/** A per-instance action handler: the message's data and channel. */
export type InstanceActionHandler = (data: unknown, channel: string | undefined) => unknown;

/** What an {@link InstanceHandle} needs from its client (ServmanClient implements it). */
export interface InstanceHandleHost {
  send(instance: string, action: string, data?: unknown, channel?: string): void;
  sendChecked(instance: string, action: string, data?: unknown, channel?: string): Promise<void>;
  join(instance: string, data?: unknown): Promise<void>;
  leave(instance: string): Promise<void>;
  stop(instance: string): Promise<void>;
  /** Makes `handle` the client's handle of its instance again, after it was dropped. */
  reattach(handle: InstanceHandle): void;
}

/**
 * Per-instance handlers and requests. One handler per action (a second `on` throws unless
 * `{ replace: true }`). The client drops a handle's handlers when it leaves the instance or hears
 * it `closed`; `on` afterwards attaches the handle again.
 */
export class InstanceHandle {
  readonly #handlers = new Map<string, InstanceActionHandler>();

  /** @internal Created by `ServmanClient.instance`. */
  constructor(
    /** The instance id. */
    readonly id: string,
    private readonly host: InstanceHandleHost,
  ) {}

  /**
   * Handles `action` from this instance only. It runs before any client-wide handler of the same
   * action (both run). Returns a function that removes it.
   */
  on(action: string, handler: InstanceActionHandler, options: HandleOptions = {}): () => void {
    if (!options.replace && this.#handlers.has(action)) throw duplicateHandler(action, ` for instance ${this.id}`);
    this.host.reattach(this);
    this.#handlers.set(action, handler);
    return () => {
      if (this.#handlers.get(action) === handler) this.#handlers.delete(action);
    };
  }

  /** Removes the handler of `action`; returns false when it had none. */
  off(action: string): boolean {
    return this.#handlers.delete(action);
  }

  /** The actions with a handler here. */
  actions(): string[] {
    return [...this.#handlers.keys()];
  }

  /** Fire and forget, like `client.send(id, ...)`. */
  send(action: string, data?: unknown, channel?: string): void {
    this.host.send(this.id, action, data, channel);
  }

  /** Like `client.sendChecked(id, ...)`: settles when the gateway has published it, or refused it. */
  sendChecked(action: string, data?: unknown, channel?: string): Promise<void> {
    return this.host.sendChecked(this.id, action, data, channel);
  }

  /** Joins the instance (`client.join`). */
  join(data?: unknown): Promise<void> {
    return this.host.join(this.id, data);
  }

  /** Leaves the instance; its handlers here are dropped. */
  leave(): Promise<void> {
    return this.host.leave(this.id);
  }

  /** Stops the instance (owner only). */
  stop(): Promise<void> {
    return this.host.stop(this.id);
  }

  /** @internal Calls the handler of `action`; false when there is none. Errors go to `onError`. */
  dispatch(action: string, data: unknown, channel: string | undefined, onError: (err: unknown) => void): boolean {
    const handler = this.#handlers.get(action);
    if (!handler) return false;
    try {
      const result = handler(data, channel);
      if (result instanceof Promise) result.catch(onError);
    } catch (err) {
      onError(err);
    }
    return true;
  }

  /** @internal The client no longer routes to this handle (left, closed). */
  clear(): void {
    this.#handlers.clear();
  }
}
