/** What a client session needs from its gateway (gateway.ts builds it once, for every session). */
import type { RedisClient } from "../src/redis-connection.js";
import type { GatewayLimits } from "../src/config/options.js";
import type { Keys } from "../src/keys.js";
import type { Requester } from "../src/launch/requester.js";
import type { PostMortem } from "../src/registry/instance-logs.js";
import type { SessionStore } from "../src/registry/session-store.js";
import type { GatewayMetrics } from "./metrics.js";

export interface SessionContext {
  readonly gatewayId: string;
  readonly redis: RedisClient;
  readonly keys: Keys;
  readonly requester: Requester;
  readonly limits: GatewayLimits;
  readonly metrics: GatewayMetrics;
  readonly store: SessionStore;
  /** How long a dropped connection's session waits to be resumed; 0: sessions end with their connection. */
  readonly resumeWindowMs: number;
  /** The gateway id joins and resumes name, for nodes to fan out through this gateway; undefined: per session (`gateway.fanout`). */
  readonly routeAs: string | undefined;
  /** The session on `oldChannel` resumed an older session: it listens on `newChannel` from now on. */
  rebind(oldChannel: string, newChannel: string): Promise<void>;
  postMortem(instance: string): Promise<PostMortem | null>;
}
