/**
 * Rebuilding a node's part of the registry after Redis lost its data (a restart without
 * persistence, a failover to an empty replica): the instance records, the sets that index them,
 * and (through the heartbeat that follows) the node's record and offers. The processes never
 * stopped; only Redis forgot them.
 *
 * Data loss is told apart from a node merely missing its heartbeat (which the reapers act on) by
 * the epoch (src/registry/epoch-watch.ts).
 */
import type { RedisClient } from "../src/redis-connection.js";
import type { Logger } from "pino";
import type { Keys } from "../src/keys.js";
import { EpochWatch } from "../src/registry/epoch-watch.js";
import type { InstanceRecord, InstanceRegistry, InstanceState } from "../src/registry/instance-registry.js";
import type { InstancePhase } from "./instance-host.js";

/** What the node knows of an instance's launch, kept for as long as the instance lives. */
export type LaunchFacts = Pick<InstanceRecord, "task" | "owner" | "ownerUser" | "options" | "args" | "token" | "created" | "incarnation">;

/** What a check found: the same data (`same`), data lost and written back (`rebuilt`), or nothing (RedisClient failed). */
export type EpochCheck = "same" | "rebuilt" | "unknown";

/** A live instance as the node sees it now. */
export interface LiveInstance {
  readonly id: string;
  readonly phase: InstancePhase;
  readonly pid: number;
}

export interface RegistryRebuildOptions {
  nodeId: string;
  redis: RedisClient;
  keys: Keys;
  registry: InstanceRegistry;
  logger: Logger;
  /** The node's instances right now. */
  instances(): Iterable<LiveInstance>;
}

export class RegistryRebuild {
  private readonly epoch: EpochWatch;
  private readonly facts = new Map<string, LaunchFacts & { readyAt: number }>();
  private checking: Promise<EpochCheck> | undefined;

  constructor(private readonly options: RegistryRebuildOptions) {
    this.epoch = new EpochWatch(options.redis, options.keys.epoch());
  }

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
   * tries again). A node missing from Redis after `rebuilt` was forgotten, not declared dead.
   */
  check(): Promise<EpochCheck> {
    this.checking ??= this.compare().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async compare(): Promise<EpochCheck> {
    const { logger } = this.options;
    let rebuilt = false;
    try {
      await this.epoch.check(async () => {
        await this.rebuild();
        rebuilt = true;
      });
      return rebuilt ? "rebuilt" : "same";
    } catch (err) {
      logger.warn({ err }, "could not check whether Redis kept the registry; will retry");
      return "unknown";
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
        instance: instance.id,
        node: nodeId,
        state,
        pid: instance.phase === "launching" ? 0 : instance.pid,
        ...facts,
        tries: 0,
        lastError: "",
        retryBy: 0,
      };
      if (await registry.restore(record)) restored++;
    }
    logger.warn({ restored, ms: Date.now() - started }, "Redis lost its data: this node's instances are back in the registry");
  }
}
