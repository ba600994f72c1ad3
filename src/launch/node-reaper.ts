/**
 * Finds nodes that died without unregistering (SIGKILL, power loss): their record's TTL ran out.
 * Exactly one reaper in the cluster takes each dead node; it removes the node's instances from
 * the registry, tells every gateway they are lost (their clients get `closed` with reason `lost`),
 * and launches again, under the same id, those whose task says `relaunch: true`.
 * Every node and every gateway runs one, so the cluster heals while any of them is alive.
 */
import type { RedisClient } from "../redis-connection.js";
import type { Logger } from "pino";
import { DEFAULTS, type TaskConfig } from "../config/options.js";
import type { Keys } from "../keys.js";
import type { ClusterEvent } from "../protocol/bus-messages.js";
import { InstanceLogs } from "../registry/instance-logs.js";
import { storedError } from "./attempt-error.js";
import { DEATH_CONFIRM_MS, DeathConfirmation } from "../registry/liveness.js";
import type { Requester } from "./requester.js";
import { publish } from "../pubsub.js";

export interface NodeReaperOptions {
  redis: RedisClient;
  keys: Keys;
  requester: Requester;
  /** Task settings (relaunch) from this process's configuration. */
  tasks: Readonly<Record<string, TaskConfig>>;
  logger: Logger;
  /** How often to look for dead nodes. Default 1 000 ms. */
  intervalMs?: number;
  /** The nodes' `node.lockDurationMs`: a dead node's launch job runs again once its lock ran out. */
  lockDurationMs?: number;
}

export class NodeReaper {
  private timer: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly deaths = new DeathConfirmation(DEATH_CONFIRM_MS);
  private readonly logs: InstanceLogs;

  constructor(private readonly options: NodeReaperOptions) {
    this.logs = new InstanceLogs(options.redis, options.keys);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.sweep(), this.options.intervalMs ?? 1_000);
  }

  /** Stops looking. Idempotent. */
  close(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass: reaps every dead node this reaper is first to claim. Never throws. */
  async sweep(): Promise<void> {
    if (this.sweeping) return;
    this.sweeping = true;
    const { requester, logger } = this.options;
    try {
      for (const node of this.deaths.confirmed(await requester.nodes.expired())) {
        if (await requester.nodes.claimReap(node)) {
          this.deaths.forget(node);
          await this.reap(node);
        }
      }
    } catch (err) {
      logger.warn({ err }, "dead-node sweep failed; retrying");
    } finally {
      this.sweeping = false;
    }
  }

  private async reap(node: string): Promise<void> {
    const { redis, keys, requester, tasks, logger } = this.options;
    const lost: string[] = [];
    for (const id of await requester.instances.heldBy(node)) {
      const record = await requester.instances.get(id);
      if (record?.state === "launching" && record.token !== "") {
        // Not lost yet: BullMQ runs the job again once the dead node's lock runs out, and that run
        // claims the reservation again (the requester waits for it until retryBy).
        const retryBy = Date.now() + 2 * (this.options.lockDurationMs ?? DEFAULTS.lockDurationMs);
        const lastError = storedError("launch_failed", `node ${node} stopped answering during the launch`);
        if ((await requester.instances.release(id, node, record.token, { token: record.token, lastError, retryBy })) > 0) continue;
      }
      if (!(await requester.instances.removeIfNode(id, node, record?.ownerUser ?? null)) || !record) continue;
      lost.push(id);
      const lastLines = (await this.logs.read(id, 20)).map((l) => l.text);
      await this.logs.ended({ instance: id, task: record.task, node, reason: "lost", code: null, signal: null, endedAt: Date.now(), restarts: 0, peakRssMb: null, lastLines });
      const event: ClusterEvent = { type: "lost", instance: id, node };
      await publish(redis, keys.events(), JSON.stringify(event));
      if (tasks[record.task]?.relaunch) {
        requester.launch({ task: record.task, instance: id, args: record.args, options: record.options, owner: record.owner, ownerUser: record.ownerUser }).then(
          (r) => logger.info({ instance: id, node: r.node, from: node }, "lost instance relaunched"),
          (err: Error) => logger.warn({ instance: id, err }, "relaunch of a lost instance failed"),
        );
      }
    }
    // Not DEL of the node's set: a node that was only paused may have registered again (fencing)
    // and claimed launches since; each id above left the set as its record was dealt with.
    logger.warn({ deadNode: node, lost: lost.length, instances: lost.slice(0, 20) }, "node stopped answering; its instances are lost");
  }
}
