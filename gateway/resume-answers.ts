/**
 * The early answers of a resumed session's instances (`resume_answer`, docs/resume.md): each node
 * answers a `resume` at once, before it waits for the client's old gateway, with the highest
 * numbered send it received from the client. The resuming gateway waits for them, bounded,
 * before `resumed`, whose `acked` is the highest of them: what a killed gateway knew of the
 * client's sends is with the nodes, not lost with it.
 */

/** A node that does not answer (an older version, or one that just died) is waited for this long. */
const ANSWER_WAIT_MS = 1_000;

export class ResumeAnswers {
  private readonly waiting: Set<string>;
  private received = 0;
  private done: (() => void) | undefined;

  /** `instances`: those asked (their answers may come before `wait`). */
  constructor(instances: Iterable<string>) {
    this.waiting = new Set(instances);
  }

  /** The node of `instance` answered. */
  answered(instance: string, received: number): void {
    this.received = Math.max(this.received, received);
    if (this.waiting.delete(instance) && this.waiting.size === 0) this.done?.();
  }

  /** No node heard the resume of `instance` (it is gone): no answer will come. */
  forget(instance: string): void {
    this.waiting.delete(instance);
  }

  /**
   * Resolves with the highest send number the answering nodes received (0: none), once every
   * instance still waited for answered, or ANSWER_WAIT_MS passed.
   */
  wait(): Promise<number> {
    if (this.waiting.size === 0) return Promise.resolve(this.received);
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.done?.(), ANSWER_WAIT_MS);
      this.done = () => {
        clearTimeout(timer);
        this.done = undefined;
        resolve(this.received);
      };
    });
  }
}
