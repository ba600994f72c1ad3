/**
 * The WebSocket close codes a gateway sends and the client SDK acts on
 * (docs/protocol.md#close-codes).
 */

/** A deliberate close by the client: its session ends at once. */
export const CLOSE_NORMAL = 1000;
/** The gateway is shutting down: the client resumes its session on another. */
export const CLOSE_GOING_AWAY = 1001;
/** A close without a code (`close()` with none): as deliberate as {@link CLOSE_NORMAL}. */
export const CLOSE_NO_STATUS = 1005;
/** A policy ended the connection (ticket, rate): the session ends; reconnecting would not help. */
export const CLOSE_POLICY = 1008;
/** The gateway failed (Redis unavailable, a resume that failed half-way): resume again. */
export const CLOSE_INTERNAL_ERROR = 1011;
/** Another connection resumed this session: this one no longer holds it (Servman's own code). */
export const CLOSE_SESSION_TAKEN = 4000;

/**
 * Close codes after which a session is over at once: the client closed it (1000, or 1005: no
 * code), or a policy ended it (1008: ticket, rate). After any other (a dropped connection, 1001
 * from a draining gateway) it waits `gateway.resumeWindowMs` to be resumed.
 */
export const ENDING_CLOSE_CODES: ReadonlySet<number> = new Set([CLOSE_NORMAL, CLOSE_NO_STATUS, CLOSE_POLICY]);
