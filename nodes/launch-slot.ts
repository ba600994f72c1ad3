/**
 * A node's capacity: the slots its instances take (`node.capacity`: launching, ready or
 * stopping) and the launches in progress (`node.launchConcurrency`). Each launch holds one
 * {@link LaunchSlot}. A failed launch has several paths that may each free its slot (a lost
 * claim, a drain, an error, the instance's retirement); every release is idempotent, so the
 * counts can neither leak nor go negative whichever paths run.
 */

/** One launch's hold on its node's capacity. */
export interface LaunchSlot {
  /** The launch job is over (launched or failed): frees its place in `launchConcurrency`. Idempotent. */
  endLaunch(): void;
  /** The instance is gone, or never came to be: frees its capacity slot. Idempotent. */
  release(): void;
  /** True once {@link release} ran. */
  readonly released: boolean;
}

export interface CapacityLimits {
  /** Slots: instances launching, ready or stopping. */
  capacity: number;
  /** Launches in progress at once. */
  launchConcurrency: number;
}

export class NodeCapacity {
  private live = 0;
  private launching = 0;

  /** `changed` runs after every change of the counts (the node pauses or resumes its intake). */
  constructor(
    private readonly limits: CapacityLimits,
    private readonly changed: () => void = () => {},
  ) {}

  /** Slots taken: instances launching, ready or stopping. */
  get running(): number {
    return this.live;
  }

  /** Launches in progress. */
  get launches(): number {
    return this.launching;
  }

  /** True while a slot is free and fewer than `launchConcurrency` launches run. */
  get open(): boolean {
    return this.live < this.limits.capacity && this.launching < this.limits.launchConcurrency;
  }

  /**
   * Takes a slot and a launch for one job, or returns null when {@link open} is false. Takes
   * them synchronously, so concurrent jobs see them before any await.
   */
  take(): LaunchSlot | null {
    if (!this.open) return null;
    this.live++;
    this.launching++;
    let launchEnded = false;
    let released = false;
    const slot: LaunchSlot = {
      endLaunch: () => {
        if (launchEnded) return;
        launchEnded = true;
        this.launching--;
        this.changed();
      },
      release: () => {
        if (released) return;
        released = true;
        this.live--;
        this.changed();
      },
      get released() {
        return released;
      },
    };
    this.changed();
    return slot;
  }
}
