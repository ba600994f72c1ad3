/**
 * The one schema of the configuration file (docs/configuration.md). Unknown keys are rejected everywhere, so a
 * typo is an error at startup rather than a setting silently ignored.
 */
import { Type, type Static } from "@sinclair/typebox";
import { NAME_PATTERN, PREFIX_PATTERN } from "../names.js";

const strict = { additionalProperties: false } as const;
const PositiveInt = Type.Integer({ minimum: 1 });
const Millis = Type.Integer({ minimum: 1, maximum: 86_400_000 });

/** `redis` as a URL of any of the three forms (docs/configuration.md#redis). */
const RedisUrlSchema = Type.String({ pattern: "^rediss?(\\+(cluster|sentinel))?://" });
/** `redis` as a cluster: its startup nodes' URLs. */
export const RedisClusterSchema = Type.Object({ cluster: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }) }, strict);
/** `redis` as a master found through Sentinel. */
export const RedisSentinelSchema = Type.Object(
  {
    sentinels: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
    name: Type.String({ pattern: "^[A-Za-z0-9_.-]{1,128}$" }),
    username: Type.Optional(Type.String({ minLength: 1 })),
    password: Type.Optional(Type.String({ minLength: 1 })),
    sentinelPassword: Type.Optional(Type.String({ minLength: 1 })),
    tls: Type.Optional(Type.Boolean()),
  },
  strict,
);

const TaskSchema = Type.Object(
  {
    module: Type.Optional(Type.String({ minLength: 1 })),
    command: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
    restart: Type.Optional(Type.Union([Type.Literal("never"), Type.Literal("on-failure"), Type.Literal("always")])),
    maxRestarts: Type.Optional(Type.Integer({ minimum: 0 })),
    attempts: Type.Optional(PositiveInt),
    readyTimeoutMs: Type.Optional(Millis),
    idleTimeoutMs: Type.Optional(Millis),
    emptyTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
    maxLifetimeMs: Type.Optional(Millis),
    maxMemoryMb: Type.Optional(PositiveInt),
    livenessTimeoutMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
    relaunch: Type.Optional(Type.Boolean()),
    warm: Type.Optional(Type.Integer({ minimum: 0 })),
    warmMax: Type.Optional(Type.Integer({ minimum: 0 })),
    maxQueuedBytes: Type.Optional(Type.Integer({ minimum: 1024 })),
    env: Type.Optional(Type.Record(Type.String(), Type.String())),
    isolation: Type.Optional(Type.Union([Type.Literal("process"), Type.Literal("shared")])),
    instancesPerProcess: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
  },
  strict,
);

const LimitsSchema = Type.Object(
  {
    maxFrameBytes: Type.Optional(PositiveInt),
    messagesPerSecond: Type.Optional(PositiveInt),
    burst: Type.Optional(PositiveInt),
    maxJoinsPerConnection: Type.Optional(PositiveInt),
    maxConnectionsPerIp: Type.Optional(PositiveInt),
    maxBufferedBytes: Type.Optional(PositiveInt),
    maxInstancesPerUser: Type.Optional(Type.Integer({ minimum: 0 })),
    maxDepth: Type.Optional(Type.Integer({ minimum: 2, maximum: 1000 })),
    headersTimeoutMs: Type.Optional(Millis),
    pingIntervalMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86_400_000 })),
    pongTimeoutMs: Type.Optional(Millis),
  },
  strict,
);

export const ConfigFileSchema = Type.Object(
  {
    // Names the JSON Schema, for editors (docs/configuration.md#json-schema); Servman ignores it.
    $schema: Type.Optional(Type.String()),
    redis: Type.Optional(Type.Union([RedisUrlSchema, RedisClusterSchema, RedisSentinelSchema])),
    prefix: Type.Optional(Type.String({ pattern: PREFIX_PATTERN.source })),
    gateway: Type.Optional(
      Type.Object(
        {
          host: Type.Optional(Type.String({ minLength: 1 })),
          port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
          tls: Type.Optional(Type.Object({ cert: Type.String(), key: Type.String() }, strict)),
          limits: Type.Optional(LimitsSchema),
          resumeWindowMs: Type.Optional(Type.Integer({ minimum: 0 })),
          allowedHosts: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 253 }))),
          allowedOrigins: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 2048 }))),
          fanout: Type.Optional(Type.Union([Type.Literal("gateway"), Type.Literal("session")])),
        },
        strict,
      ),
    ),
    node: Type.Optional(
      Type.Object(
        {
          id: Type.Optional(Type.String({ pattern: NAME_PATTERN.source })),
          capacity: Type.Optional(Type.Integer({ minimum: 0 })),
          launchConcurrency: Type.Optional(PositiveInt),
          shutdownDeadlineMs: Type.Optional(Millis),
          lockDurationMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 86_400_000 })),
        },
        strict,
      ),
    ),
    auth: Type.Optional(
      Type.Object(
        {
          secret: Type.Optional(Type.String({ minLength: 16 })),
          adminTokens: Type.Optional(Type.Array(Type.String({ minLength: 16 }))),
        },
        strict,
      ),
    ),
    // additionalProperties: a task name outside the pattern is an error, not an ignored entry.
    tasks: Type.Optional(Type.Record(Type.String({ pattern: NAME_PATTERN.source }), TaskSchema, strict)),
  },
  strict,
);

export type ConfigFile = Static<typeof ConfigFileSchema>;
export type TaskFileEntry = Static<typeof TaskSchema>;
