/**
 * A task's `attempts`: a launch whose process exits before `ready` (`launch_failed`) or misses
 * `readyTimeoutMs` (`timeout`) is tried again, preferably on another node, until `attempts` of
 * them failed. Between two attempts the registry record is a reservation again (same id, same
 * token), and the job, handed back to BullMQ, carries the nodes that failed it (`tried`).
 *
 * Also what a node does when its claim fails because another run of the same job holds the
 * launch (BullMQ runs a job again when its lock runs out): it never starts a second process, it
 * waits for that run, and takes the launch over only from a node that died.
 */
import type { Job } from "bullmq";
import { nanoid } from "nanoid";
import type { Logger } from "pino";
import type { TaskConfig } from "../src/config/options.js";
import { ServmanError, type ErrorCode } from "../src/errors.js";
import { abandonedRetryError, lastAttemptError, storedError } from "../src/launch/attempt-error.js";
import type { LaunchJobData, LaunchJobResult } from "../src/launch/launch-job.js";
import type { InstanceRegistry } from "../src/registry/instance-registry.js";
import type { NodeRegistry } from "../src/registry/node-registry.js";
import { LIVENESS_TTL_MS } from "../src/registry/liveness.js";

/** Failures worth another attempt: the process itself did not come up. */
const RETRYABLE: ReadonlySet<ErrorCode> = new Set(["launch_failed", "timeout"]);

/** How often a node waiting on another run of the same job reads the registry. */
const WATCH_MS = 250;

/** How long a failed launch waits for its killed process to be gone before the job goes on. */
const ENDED_WAIT_MS = 10_000;

/** The attempt that failed: its instance (if it got that far), when it claimed, and whether the node drains. */
export interface FailedAttempt {
  instance: { abort(reason: string): void; readonly ended: Promise<unknown> } | undefined;
  claimedAt: number;
  draining: boolean;
  /** The node's registration that claimed the launch (docs/architecture.md#fencing). */
  incarnation: string;
}

/**
 * How a node's claim of a launch came out: it holds the launch (`claimed`); another run of the
 * same job launched it and replied, so this run only completes with its `result` (`launched`);
 * or the id belongs to another launch (`taken`).
 */
export type ClaimOutcome = { kind: "claimed" } | { kind: "launched"; result: LaunchJobResult } | { kind: "taken" };

const TAKEN: ClaimOutcome = { kind: "taken" };

export interface LaunchAttemptsOptions {
  nodeId: string;
  /** The node's current registration (docs/architecture.md#fencing). */
  incarnation(): string;
  registry: InstanceRegistry;
  nodes: NodeRegistry;
  logger: Logger;
}

export class LaunchAttempts {
  /** Launches between their claim and the end of their job: their record is the job's to settle. */
  private readonly inProgress = new Set<string>();

  constructor(private readonly options: LaunchAttemptsOptions) {}

  /** Marks `instance` as launching here until {@link end}: see {@link holds}. */
  begin(instance: string): void {
    this.inProgress.add(instance);
  }

  end(instance: string): void {
    this.inProgress.delete(instance);
  }

  /**
   * True while the launch job of `instance` still runs on this node: when its process ends, the
   * job (not the instance's retirement) gives the record back for another attempt or deletes it.
   */
  holds(instance: string): boolean {
    return this.inProgress.has(instance);
  }

  /**
   * True when this node already failed the job and a live node offering the task has not tried
   * it yet: that one should. Never throws (a Redis error means: try here).
   */
  async standAside(data: LaunchJobData): Promise<boolean> {
    const tried = Array.isArray(data.tried) ? data.tried : [];
    if (!tried.includes(this.options.nodeId)) return false;
    try {
      return (await this.options.nodes.offeringNodes(data.task)).some((node) => !tried.includes(node));
    } catch {
      return false;
    }
  }

  /**
   * The error for a job taken past its deadline, or null when the launch may go on: a retry whose
   * record gives it until a later `retryBy` (set when a dead node's attempt was given back). The
   * reservation is cancelled here, so it never outlives its launch. Never throws.
   */
  async pastDeadline(data: LaunchJobData): Promise<ServmanError | null> {
    const token = typeof data.token === "string" ? data.token : "";
    try {
      if (token !== "") {
        const record = await this.options.registry.get(data.instance);
        if (record && record.token === token && record.node === "" && record.retryBy > Date.now()) return null;
        const cancelled = await this.options.registry.cancelUnclaimed(data.instance, token, typeof data.ownerUser === "string" ? data.ownerUser : null);
        if (cancelled && cancelled.tries > 0) return abandonedRetryError(cancelled.lastError, cancelled.tries);
      }
    } catch (err) {
      this.options.logger.warn({ err, instance: data.instance }, "could not cancel an expired reservation");
    }
    return new ServmanError("no_capacity", "the launch waited past its timeout");
  }

  /**
   * Claims the launch of `data.instance` for this node (`claim`: the registry's atomic claim),
   * and when that fails because another run of this same job holds it, waits for that run (see
   * {@link ClaimOutcome}). Throws when Redis does.
   */
  async claim(data: LaunchJobData, task: TaskConfig, claim: () => Promise<boolean>): Promise<ClaimOutcome> {
    return (await claim()) ? { kind: "claimed" } : this.afterLostClaim(data, task, claim);
  }

  /**
   * After a failed claim: "claimed" once this node holds the launch after all (the reservation
   * came back, or its node died), "launched" with the result of another run of this job that
   * launched it, or "taken" when the id is taken for good. While a live node runs the launch,
   * this waits for it (at most one readyTimeoutMs and a node TTL) rather than start a second
   * process.
   */
  private async afterLostClaim(data: LaunchJobData, task: TaskConfig, claim: () => Promise<boolean>): Promise<ClaimOutcome> {
    const { registry, nodeId } = this.options;
    const token = typeof data.token === "string" ? data.token : "";
    if (token === "") return TAKEN;
    const giveUpAt = Date.now() + task.readyTimeoutMs + LIVENESS_TTL_MS + 2_000;
    for (let watching = false; Date.now() < giveUpAt; watching = true) {
      const record = await registry.get(data.instance);
      if (!record || record.token !== token) return TAKEN;
      if (record.state !== "launching") return { kind: "launched", result: { instance: data.instance, node: record.node } };
      if (record.node === "" ? await claim() : await registry.takeOver(data.instance, token, record.node, nodeId, this.options.incarnation())) {
        if (record.node !== "") this.options.logger.warn({ instance: data.instance, deadNode: record.node }, "took over the launch of a node that died");
        return { kind: "claimed" };
      }
      if (!watching) this.options.logger.info({ instance: data.instance, node: record.node }, "another run of this launch job holds it; waiting for that one");
      await new Promise((resolve) => setTimeout(resolve, WATCH_MS));
    }
    return TAKEN;
  }

  /**
   * After an attempt that held the claim failed with `err`: ends its process, if any, then
   * returns "retry" once the record is a reservation again and the job records this node among
   * those that failed (the caller hands the job back), else the launch's final error, its record
   * gone.
   */
  async afterFailure(job: Job<LaunchJobData, LaunchJobResult>, data: LaunchJobData, task: TaskConfig, err: ServmanError, attempt: FailedAttempt): Promise<"retry" | ServmanError> {
    const { registry, nodeId, logger } = this.options;
    const { instance, claimedAt, draining, incarnation } = attempt;
    if (instance) {
      instance.abort(err.message);
      // Bounded: the next attempt must not start while this process may still run, nor hang.
      await Promise.race([instance.ended, new Promise((resolve) => setTimeout(resolve, ENDED_WAIT_MS).unref())]);
    }
    const tried = [...(Array.isArray(data.tried) ? data.tried : []), nodeId];
    const ownerUser = typeof data.ownerUser === "string" ? data.ownerUser : null;
    const retryable = RETRYABLE.has(err.code);
    const final = retryable && task.attempts > 1 ? lastAttemptError(err.code, err.message, tried) : err;
    if (!draining && retryable && tried.length < task.attempts) {
      const token = typeof data.token === "string" ? data.token : "";
      // A direct enqueue had no reservation: its next attempt claims under a token of its own.
      const next = token === "" ? nanoid(16) : token;
      // The next attempt waits for capacity no longer, overall, than the first one was allowed to.
      const deadline = typeof data.deadline === "number" && data.deadline > 0 ? data.deadline + (Date.now() - claimedAt) : 0;
      try {
        if ((await registry.release(data.instance, nodeId, token, { token: next, lastError: storedError(err.code, err.message), retryBy: deadline }, incarnation)) > 0) {
          await job.updateData({ ...data, token: next, tried, deadline });
          logger.warn({ instance: data.instance, attempt: tried.length, of: task.attempts, err }, "launch attempt failed; handing it back for another");
          return "retry";
        }
      } catch (e) {
        logger.warn({ err: e, instance: data.instance }, "could not hand a failed launch back; it fails");
      }
    }
    await registry.removeIfNode(data.instance, nodeId, ownerUser, incarnation).catch((e: Error) => logger.warn({ err: e, instance: data.instance }, "could not remove a failed launch"));
    return final;
  }
}
