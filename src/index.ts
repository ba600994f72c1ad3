/** Servman's public API. Each role also has its own entry: `servman/client`, `servman/service`, `servman/launcher`. */
export { ServmanClient } from "./client/servman-client.js";
export type { ClientEvents, LaunchParams, LaunchResult, ServmanClientOptions, WebSocketConstructor, WebSocketLike } from "./client/servman-client.js";
export { Service, runService } from "./service/service.js";
export type { JoinDecision } from "./service/service.js";
export { action, ActionDispatcher } from "./actions.js";
export { Launcher } from "./launcher/launcher.js";
export type { LauncherLaunchParams, LauncherOptions } from "./launcher/launcher.js";
export { ServmanError, ConfigError, ERROR_CODES, isErrorCode } from "./errors.js";
export type { ErrorCode } from "./errors.js";
export { loadConfig } from "./config/load-config.js";
export type { ConfigOverrides } from "./config/load-config.js";
export type { ServmanConfig, TaskConfig, GatewayLimits } from "./config/options.js";
export { Keys } from "./keys.js";
export type { LaunchJobData, LaunchJobResult, LaunchJoin } from "./launch/launch-job.js";
export type { InstanceRecord } from "./registry/instance-registry.js";
export type { NodeRecord } from "./registry/node-registry.js";
export type { ClosedReason, LaunchOptions, ServerFrame } from "./protocol/client-messages.js";
export type { NodeToService, ServiceToNode, LeaveReason } from "./protocol/task-messages.js";
