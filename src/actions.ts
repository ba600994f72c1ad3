/**
 * Dispatching messages by action name, shared by the service SDK and the client SDK: the
 * original's `@action` idea, as a TypeScript (TC39) method decorator or as `handle(name, fn)`.
 */

/** A handler for one action; `Args` are what the SDK passes (sender, data, channel). */
export type ActionHandler<Args extends unknown[]> = (...args: Args) => unknown;

/** Holds the handlers of one object and calls them by name. */
export class ActionDispatcher<Args extends unknown[]> {
  readonly #handlers = new Map<string, ActionHandler<Args>>();

  /** Registers (or replaces) the handler of `action`. Returns this, for chaining. */
  handle(action: string, handler: ActionHandler<Args>): this {
    this.#handlers.set(action, handler);
    return this;
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
      this.handle(actionName, method.bind(this));
    });
  };
}
