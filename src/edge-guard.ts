/**
 * The guard every entry point of outside input runs behind: a WebSocket frame, an HTTP request,
 * a Redis message, an IPC message, a task's output line, a timer. An exception thrown while
 * handling one input is reported (logged with its stack, counted, answered where someone waits)
 * and the process goes on serving everything else (docs/security.md#hostile-input). The guards
 * sit at the edges only; code inside them throws as usual.
 */

/** Reports an exception that escaped a handler at the edge named `where`. */
export type EdgeFault = (err: unknown, where: string) => void;

/** Wraps a synchronous handler: whatever it throws goes to `fault`, never to the event loop. */
export function guarded<A extends unknown[]>(where: string, fault: EdgeFault, handler: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      handler(...args);
    } catch (err) {
      fault(err, where);
    }
  };
}
