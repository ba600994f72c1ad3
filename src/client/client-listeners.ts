/**
 * A client's event listeners (`client.on("resumed", ...)`): any number per event, each removable
 * by the function `on` returns.
 */
export class ClientListeners<Events extends { [E in keyof Events]: unknown[] }> {
  // Each event's listener has its own signature (Events); the map holds them all.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  private readonly listeners = new Map<keyof Events, Set<(...args: any[]) => void>>();

  /** Adds a listener. Returns a function that removes it. */
  on<E extends keyof Events>(event: E, listener: (...args: Events[E]) => void): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    const stored = listener as (...args: unknown[]) => void;
    set.add(stored);
    return () => set.delete(stored);
  }

  emit<E extends keyof Events>(event: E, ...args: Events[E]): void {
    for (const listener of this.listeners.get(event) ?? []) listener(...args);
  }

  /** How many listeners `event` has. */
  count(event: keyof Events): number {
    return this.listeners.get(event)?.size ?? 0;
  }
}
