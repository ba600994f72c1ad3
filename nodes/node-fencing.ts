/**
 * The node side of fencing (docs/architecture.md#fencing): the node's registration and its fence
 * (nodes/fence.ts), the heartbeat that confirms it (nodes/node-heartbeat.ts), the instance host
 * each launch gets under the registration that claimed it, and what happens to the instances of a
 * registration declared dead: cut off from routing and capacity, killed, and retired without
 * touching the record of whoever holds their id now.
 */
import type { RedisClient } from "../src/redis-connection.js";
import type { Logger } from "pino";
import { ServmanError } from "../src/errors.js";
import type { Keys } from "../src/keys.js";
import type { LaunchSpec } from "../src/launch/launch-job.js";
import type { InstanceLogs } from "../src/registry/instance-logs.js";
import type { InstanceRegistry } from "../src/registry/instance-registry.js";
import type { NodeRecord, NodeRegistry } from "../src/registry/node-registry.js";
import { NodeFence } from "./fence.js";
import type { Instance } from "./instance.js";
import type { InstanceEnd, InstanceHost } from "./instance-host.js";
import type { LaunchSlot } from "./launch-slot.js";
import { NodeHeartbeat } from "./node-heartbeat.js";
import type { RegistryRebuild } from "./registry-rebuild.js";
import { publish, unsubscribe } from "../src/pubsub.js";

/** Thrown by a claim refused because the node's record does not name its registration. */
export const FENCED = new Error("fenced");

/** The node-wide part of an instance's host; the rest is bound to the registration that claimed the launch. */
export type NodeSideHost = Omit<InstanceHost<Instance>, "publish" | "publishCounted" | "setState" | "log" | "retire">;

/** What the node shares with its fencing: its connections, registries and routing tables. */
export interface NodeFencingOptions {
  nodeId: string;
  keys: Keys;
  /** The node's command connection (publishes, registry writes). */
  redis: RedisClient;
  /** The node's subscriber connection. */
  sub: RedisClient;
  registry: InstanceRegistry;
  nodes: NodeRegistry;
  rebuild: RegistryRebuild;
  logs: InstanceLogs;
  logger: Logger;
  /** The node's live instances by id, by channel, and the capacity slot each holds. */
  instances: Map<string, Instance>;
  byChannel: Map<string, Instance>;
  slots: Map<Instance, LaunchSlot>;
  /** The node's record as it is now (the heartbeat writes it; `fenced` is filled in here). */
  record(): Omit<NodeRecord, "fenced">;
  /** True once the node has closed (its record removed on purpose). */
  closed(): boolean;
  /** Whether the node may take launches changed. */
  intakeChanged(): void;
}

export class NodeFencing {
  private readonly fence: NodeFence;
  private readonly heartbeat: NodeHeartbeat;
  /** Instances of a registration declared dead: killed, retired without touching what is not theirs. */
  private readonly stale = new WeakSet<Instance>();

  constructor(private readonly options: NodeFencingOptions) {
    const { redis, logger } = options;
    this.fence = new NodeFence({
      publish: (channel, payload) => {
        publish(redis, channel, payload).catch((err: Error) => logger.warn({ err, channel }, "publish failed"));
      },
      publishCounted: (channel, payload) => publish(redis, channel, payload),
      check: () => void this.beat(),
      ready: () => redis.status === "ready",
    });
    this.heartbeat = new NodeHeartbeat({
      nodes: options.nodes,
      rebuild: options.rebuild,
      fence: this.fence,
      logger,
      record: () => ({ ...options.record(), fenced: this.fence.count }),
      closed: () => options.closed(),
      fenced: () => this.fenceOff(),
      intakeChanged: () => options.intakeChanged(),
    });
  }

  /** The node's current registration. */
  get incarnation(): string {
    return this.fence.incarnation;
  }

  /** True between fencing and registering again: the node's claims would be refused, it takes no jobs. */
  get rejoining(): boolean {
    return this.heartbeat.rejoining;
  }

  /** Runs a heartbeat (the fence check) now, or right after the one running. Never rejects. */
  beat(): Promise<void> {
    return this.heartbeat.beat();
  }

  /** Publishes for the node itself (launch replies): fenced like its instances' output. */
  publish(channel: string, payload: string): void {
    this.fence.publish(this.fence.incarnation, channel, payload);
  }

  /** A message from Redis for `instance`: delivered now, or held while the node is unconfirmed. */
  deliver(instance: Instance, channel: string, payload: string): void {
    if (this.fence.open) return instance.handleBus(payload);
    // By the time it goes the instance may have been fenced (or retired).
    this.fence.defer(payload.length, () => this.options.byChannel.get(channel) === instance && instance.handleBus(payload));
  }

  /**
   * The instance side of the node for an instance claimed under registration `incarnation`: its
   * output and registry writes are fenced by it; `retire` is the node's, for that registration.
   */
  hostFor(base: NodeSideHost, incarnation: string, retire: (instance: Instance, end: InstanceEnd) => Promise<void>): InstanceHost<Instance> {
    return {
      ...base,
      retire,
      publish: (channel, payload) => this.fence.publish(incarnation, channel, payload),
      publishCounted: (channel, payload) => this.fence.publishCounted(incarnation, channel, payload),
      setState: (instance, state) => this.setState(instance, incarnation, state),
      // A stale process's last lines must not land in the log of the id's relaunch.
      log: (instance, source, text) => {
        if (incarnation !== this.fence.incarnation) return;
        const line = { t: Date.now(), source, text };
        this.fence.defer(text.length, () => void this.options.logs.append(instance.id, line));
      },
    };
  }

  /** The registry's claim of a launch under `incarnation`; rejects with {@link FENCED} when refused for it. */
  claimer(instance: string, token: string, incarnation: string, spec: LaunchSpec): () => Promise<boolean> {
    return async () => {
      const outcome = await this.options.registry.claim(instance, this.options.nodeId, incarnation, token, spec);
      if (outcome === "fenced") throw FENCED;
      return outcome === "claimed";
    };
  }

  /**
   * Records that a launch is ready, under its registration. When the record is another node's by
   * then (this one was declared dead, or taken over from), the instance is cut off and this throws.
   */
  async recordReady(instance: Instance, incarnation: string, readyAt: number): Promise<void> {
    const done = await this.options.registry.update(instance.id, this.options.nodeId, incarnation, { state: "ready", readyAt, pid: instance.pid });
    if (done !== "not_ours") return;
    void this.beat();
    this.cutOff(instance, "the launch is another node's now");
    throw new ServmanError("launch_failed", "the launch is another node's now");
  }

  /** True for an instance cut off by {@link cutOff} (its registration was declared dead, or its launch taken over). */
  isStale(instance: Instance): boolean {
    return this.stale.has(instance);
  }

  /**
   * Retires a stale instance: its channel and slot went already, the reaper wrote its post-mortem,
   * and the id may be a relaunch's now (even on this node). Only a record still naming its
   * registration goes.
   */
  async retireStale(instance: Instance, incarnation: string): Promise<void> {
    await this.options.registry.removeIfNode(instance.id, this.options.nodeId, instance.ownerUser, incarnation).catch(() => {});
  }

  private setState(instance: Instance, incarnation: string, state: "ready" | "restarting" | "stopping"): void {
    this.options.registry.update(instance.id, this.options.nodeId, incarnation, { state }).then(
      (done) => {
        // The record is a relaunch's now: this node was declared dead; find out at once.
        if (done === "not_ours") void this.beat();
      },
      (err: Error) => this.options.logger.warn({ err, state }, "could not record the state"),
    );
  }

  /**
   * This node was declared dead while it was unresponsive: the cluster reported its instances
   * lost or relaunched them elsewhere. Every instance it still runs is stale: their channels are
   * dropped first (no client message reaches them), their output discarded, their processes
   * killed; the node then registers again as a new incarnation with all its capacity free.
   */
  private fenceOff(): void {
    const { instances, byChannel, keys, logger } = this.options;
    const stale = [...instances.values()];
    const channels = stale.map((instance) => keys.instanceChannel(instance.id));
    for (const channel of channels) byChannel.delete(channel);
    this.unsubscribe(channels);
    const unconfirmedMs = Math.round(this.fence.sinceConfirmed);
    const old = this.fence.renew();
    logger.error(
      { instances: stale.map((i) => i.id).slice(0, 20), unconfirmedMs, incarnation: old, next: this.fence.incarnation, fenced: this.fence.count },
      `node was declared dead while it was unresponsive; fencing: stopping ${stale.length} stale instances`,
    );
    for (const instance of stale) this.cutOff(instance, "the node was declared dead while it was unresponsive");
  }

  /**
   * Ends an instance whose registry record is no longer this node's (fenced, or taken over): out
   * of the node's routing and capacity at once, killed, and retired without touching the record
   * of whoever holds the id now.
   */
  cutOff(instance: Instance, reason: string): void {
    const { instances, byChannel, slots, keys, rebuild } = this.options;
    this.stale.add(instance);
    const channel = keys.instanceChannel(instance.id);
    if (byChannel.get(channel) === instance) {
      byChannel.delete(channel);
      this.unsubscribe([channel]);
    }
    if (instances.get(instance.id) === instance) {
      instances.delete(instance.id);
      rebuild.untrack(instance.id);
    }
    slots.get(instance)?.release();
    slots.delete(instance);
    instance.abort(reason);
  }

  private unsubscribe(channels: string[]): void {
    if (channels.length > 0) unsubscribe(this.options.sub, ...channels).catch((err: Error) => this.options.logger.warn({ err }, "could not unsubscribe stale instance channels"));
  }
}
