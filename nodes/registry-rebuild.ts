/**
 * Rebuilding a node's part of the registry after Redis lost its data (a restart without
 * persistence, a failover to an empty replica): the instance records, the sets that index them,
 * and (through the heartbeat that follows) the node's record and offers. The processes never
 * stopped; only Redis forgot them.
 *
 * Data loss is told apart from a node merely missing its heartbeat (which the reapers act on) by
 * `<prefix>:epoch`: a random value the first node to find it missing sets. A node that sees
 * another value than the one it knew writes back every record Redis no longer has.
 */
import type { Redis } from "ioredis";
import { nanoid } from "nanoid";
import type { Logger } from "pino";
import type { Keys } from "../src/keys.js";
import type { InstanceRecord, InstanceRegistry, InstanceState } from "../src/registry/instance-registry.js";
import type { InstancePhase } from "./instance.js";

/** What the node knows of an instance's launch, kept for as long as the instance lives. */
export type LaunchFacts = Pick<InstanceRecord, "task" | "owner" | "ownerUser" | "options" | "args" | "token" | "created">;

/** A live instance as the node sees it now. */
export interface LiveInstance {
  readonly id: string;
  readonly phase: InstancePhase;
  readonly pid: number;
}

export interface RegistryRebuildOptions {
  nodeId: string;
  redis: Redis;
  keys: Keys;
  registry: InstanceRegistry;
  logger: Logger;
  /** The node's instances right now. */
  instances(): Iterable<LiveInstance>;
}

export class RegistryRebuild {
  /** The epoch this node last saw; undefined before its first check. */
  private epoch: string | undefined;
  private readonly facts = new Map<string, LaunchFacts & { readyAt: number }>();
  private checking: Promise<void> | undefined;

  constructor(private readonly options: RegistryRebuildOptions) {}

  /** Remembers a claimed launch. */
  track(instance: string, facts: LaunchFacts): void {
    this.facts.set(instance, { ...facts, readyAt: 0 });
  }

  /** Remembers when the instance first became ready. */
  ready(instance: string, readyAt: number): void {
    const facts = this.facts.get(instance);
    if (facts) facts.readyAt = readyAt;
  }

  /** Forgets an instance that ended. */
  untrack(instance: string): void {
    this.facts.delete(instance);
  }

  /**
   * Compares Redis's epoch with the one this node knew and, when it changed, writes back the
   * records Redis lost. Concurrent calls share one check. Never throws (logs, and the next check
   * tries again).
   */
  check(): Promise<void> {
    this.checking ??= this.compare().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async compare(): Promise<void> {
    const { redis, keys, logger } = this.options;
    try {
      const replies = await redis.multi().set(keys.epoch(), nanoid(16), "NX").get(keys.epoch()).exec();
      const current = replies?.[1]?.[1];
      if (typeof current !== "string") return;
      if (this.epoch !== undefined && this.epoch !== current) await this.rebuild();
      this.epoch = current;
    } catch (err) {
      logger.warn({ err: (err as Error).message }, "could not check whether Redis kept the registry; will retry");
    }
  }

  private async rebuild(): Promise<void> {
    const { nodeId, registry, logger } = this.options;
    const started = Date.now();
    let restored = 0;
    for (const instance of this.options.instances()) {
      const facts = this.facts.get(instance.id);
      if (!facts || instance.phase === "ended") continue;
      const state: InstanceState = instance.phase;
      const record: InstanceRecord = {
        instance: instance.id, node: nodeId, state, pid: instance.phase === "launching" ? 0 : instance.pid,
        ...facts, tries: 0, lastError: "", retryBy: 0,
      };
      if (await registry.restore(record)) restored++;
    }
    logger.warn({ restored, ms: Date.now() - started }, "Redis lost its data: this node's instances are back in the registry");
  }
}
