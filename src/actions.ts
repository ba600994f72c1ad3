/**
 * Dispatching messages by action name, shared by the service SDK and the client SDK: the
 * original's `@action` idea, as a TypeScript (TC39) method decorator or as `handle(name, fn)`.
 *
 * One handler per action: registering a second one throws unless the caller says `{ replace: true }`.
 * A silently replaced handler is a bug that shows up far from its cause (a message "lost" to
 * another part of the program), so replacing has to be asked for.
 */
import { ServmanError } from "./errors.js";

/** A handler for one action; `Args` are what the SDK passes (sender, data, channel). */
export type ActionHandler<Args extends unknown[]> = (...args: Args) => unknown;

/** Options of `handle` (and of a client's per-instance `on`). */
export interface HandleOptions {
  /** Replace the action's current handler instead of throwing. Default false. */
  replace?: boolean;
}

/** The error a second handler for one action throws. */
export function duplicateHandler(action: string, where = ""): ServmanError {
  return new ServmanError("bad_request", `action ${JSON.stringify(action)} already has a handler${where}; pass { replace: true } to replace it, or remove it first`);
}

/** Actions registered by `@action` methods, per object: a subclass's decorated override replaces its parent's. */
const decorated = new WeakMap<object, Set<string>>();

/** Holds the handlers of one object and calls them by name. */
export class ActionDispatcher<Args extends unknown[]> {
  readonly #handlers = new Map<string, ActionHandler<Args>>();

  /**
   * Registers the handler of `action`. Returns this, for chaining. Throws a `bad_request`
   * ServmanError if the action already has one, unless `options.replace` is true.
   */
  handle(action: string, handler: ActionHandler<Args>, options: HandleOptions = {}): this {
    if (!options.replace && this.#handlers.has(action)) throw duplicateHandler(action);
    this.#handlers.set(action, handler);
    return this;
  }

  /** Removes the handler of `action`; returns false when it had none. */
  unhandle(action: string): boolean {
    decorated.get(this)?.delete(action);
    return this.#handlers.delete(action);
  }

  /** The action names with a handler. */
  actions(): string[] {
    return [...this.#handlers.keys()];
  }

  /**
   * Calls the handler of `action`; returns false when there is none. A handler's error (thrown or
   * rejected) goes to `onError`, never up: one bad message must not take the others down.
   */
  protected dispatchAction(action: string, args: Args, onError: (err: unknown) => void): boolean {
    const handler = this.#handlers.get(action);
    if (!handler) return false;
    try {
      const result = handler(...args);
      if (result instanceof Promise) result.catch(onError);
    } catch (err) {
      onError(err);
    }
    return true;
  }
}

/**
 * Marks a method as the handler of an action (default: the method's name).
 *
 * ```ts
 * class Match extends Service {
 *   @action() move(client: string, data: unknown) { ... }
 *   @action("chat-line") chat(client: string, data: unknown) { ... }
 * }
 * ```
 */
export function action(name?: string) {
  // The handler's own parameters are checked where it is called (the SDK's action arguments);
  // here any method of a dispatcher qualifies.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  return function <This extends ActionDispatcher<any>>(
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    method: (this: This, ...args: any[]) => unknown,
    context: ClassMethodDecoratorContext<This>,
  ): void {
    const actionName = name ?? String(context.name);
    context.addInitializer(function (this: This) {
      // Initializers run base class first: a subclass's decorated method of the same action
      // overrides its parent's, as the method itself does.
      let names = decorated.get(this);
      if (!names) decorated.set(this, (names = new Set()));
      this.handle(actionName, method.bind(this), { replace: names.has(actionName) });
      names.add(actionName);
    });
  };
}
