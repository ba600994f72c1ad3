/**
 * The child side of a bench server script's IPC: tell the parent we are ready, answer its
 * requests, and end cleanly on SIGTERM or when the parent goes away (never leave an orphan).
 */

type Handler = (params: Record<string, unknown>) => unknown;

/** Sends `{type: "ready", ...info}` to the parent. */
export function reportReady(info: Record<string, unknown>): void {
  process.send?.({ ...info, type: "ready" });
}

/**
 * Answers the parent's `{cmd, id, ...params}` messages with `{type: "reply", id, result}` or
 * `{type: "reply", id, error}`. `shutdown` runs once, on SIGTERM, SIGINT or IPC disconnect, and
 * the process exits when it resolves.
 */
export function serveRequests(handlers: Record<string, Handler>, shutdown: () => Promise<void> | void): void {
  process.on("message", (message: { cmd?: string; id?: number } & Record<string, unknown>) => {
    const { cmd, id } = message;
    const handler = cmd === undefined ? undefined : handlers[cmd];
    if (!handler) {
      process.send?.({ type: "reply", id, error: `unknown command ${JSON.stringify(cmd)}` });
      return;
    }
    Promise.resolve()
      .then(() => handler(message))
      .then(
        (result) => process.send?.({ type: "reply", id, result: result ?? null }),
        (err: unknown) => process.send?.({ type: "reply", id, error: err instanceof Error ? err.message : String(err) }),
      );
  });
  let ending = false;
  const end = () => {
    if (ending) return;
    ending = true;
    // A shutdown that hangs must not keep the process (and its children's fds) alive.
    setTimeout(() => process.exit(1), 20_000).unref();
    void Promise.resolve()
      .then(shutdown)
      .finally(() => process.exit(0));
  };
  process.once("SIGTERM", end);
  process.once("SIGINT", end);
  process.once("disconnect", end);
}
