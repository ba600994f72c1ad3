/**
 * A node's heartbeat, which is also its fence check (docs/architecture.md#fencing): one at a
 * time, the next asked for while one runs follows it; each first checks whether Redis lost its
 * data, then writes the node's record under its incarnation. A heartbeat that finds the node
 * declared dead has it fence itself, and the next registers it again.
 */
import type { Logger } from "pino";
import type { HeartbeatMode, NodeRecord, NodeRegistry } from "../src/registry/node-registry.js";
import { NodeFence } from "./fence.js";
import type { RegistryRebuild } from "./registry-rebuild.js";

export interface NodeHeartbeatOptions {
  nodes: NodeRegistry;
  rebuild: RegistryRebuild;
  fence: NodeFence;
  logger: Logger;
  /** The node's record as it is now. */
  record(): NodeRecord;
  /** True once the node has closed (its record removed on purpose). */
  closed(): boolean;
  /** The node was declared dead: it stops its stale instances and renews the fence's incarnation. */
  fenced(): void;
  /** Whether the node may take launches changed (none between fencing and registering again). */
  intakeChanged(): void;
}

export class NodeHeartbeat {
  /** How the next heartbeat writes the record: a new registration at start, `rejoin` after fencing. */
  private mode: HeartbeatMode = "register";
  private beating: Promise<void> | undefined;
  private again = false;
  /** When another live process holds this node's id, the last time that was logged. */
  private lastTakenLog = 0;

  constructor(private readonly options: NodeHeartbeatOptions) {}

  /** True between fencing and registering again: the node's claims would be refused. */
  get rejoining(): boolean {
    return this.mode === "rejoin";
  }

  /** Runs a heartbeat now, or right after the one running. Never rejects. */
  beat(): Promise<void> {
    if (this.beating) {
      this.again = true;
      return this.beating;
    }
    this.beating = (async () => {
      do {
        this.again = false;
        await this.once();
      } while (this.again && !this.options.closed());
    })().finally(() => (this.beating = undefined));
    return this.beating;
  }

  private async once(): Promise<void> {
    const { nodes, rebuild, fence, logger } = this.options;
    if (this.options.closed()) return;
    const epoch = await rebuild.check();
    const sent = NodeFence.now();
    const incarnation = fence.incarnation;
    // After Redis lost its data the node is missing because Redis forgot it, not because it was
    // declared dead: it registers again under the same incarnation (its records were written back).
    if (epoch === "rebuilt") this.mode = "register";
    const mode = this.mode;
    try {
      const outcome = await nodes.heartbeat(this.options.record(), incarnation, mode);
      if (this.options.closed() || incarnation !== fence.incarnation) return;
      if (outcome === "current") {
        this.mode = "refresh";
        fence.confirm(sent);
        if (mode === "rejoin") {
          logger.warn({ incarnation }, "node registered again after fencing");
          this.options.intakeChanged();
        }
      } else if (outcome === "taken") {
        if (Date.now() - this.lastTakenLog >= 60_000) {
          this.lastTakenLog = Date.now();
          logger.error("another process registered under this node's id; this node takes no launches while it is alive (two nodes must not share an id)");
        }
      } else if (epoch === "same") {
        // Not when the epoch check failed: a Redis that lost its data must not look like a death.
        this.options.fenced();
        this.mode = "rejoin";
        this.options.intakeChanged();
        this.again = true;
      }
    } catch (err) {
      logger.warn({ err }, "node heartbeat failed");
    }
  }
}
