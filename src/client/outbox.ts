/**
 * The sends a client keeps until the cluster has them (docs/resume.md#what-a-client-sends): each
 * send is numbered (`seq`, per session, from 1) when the gateway takes numbered sends, and kept
 * until the gateway says it handled it (`accepted`) or a resume says the cluster has it
 * (`resumed.acked`); after a resume, the rest are sent again, in order, and the gateway relays
 * each number once. Sends made while reconnecting wait here too, numbered or not.
 *
 * Bounded by `max` sends: while connected, the oldest sent one is let go past it (most likely the
 * gateway has it; a later resume tells, and counts it as lost if not); while reconnecting, a send
 * past it is refused. Every numbered send after the last known accepted is either kept or was let
 * go (oldest first), so what a resume shows lost is a count, not a list.
 */
import { ServmanError } from "../errors.js";
import type { RequestId } from "../protocol/client-messages.js";

interface Entry {
  /** 0: not numbered (a gateway of an earlier version). */
  seq: number;
  instance: string;
  text: string;
  written: boolean;
  /** Its instance was left or closed since: not sent again. */
  skip: boolean;
  /** A `sendChecked`'s request id: settled by the gateway's answer, or by a resume. */
  id: RequestId | undefined;
}

/** What a resume (or a reset) means for the kept sends. */
export interface OutboxOutcome {
  /** Frames to write now, in order. */
  write: string[];
  /** Checked sends the cluster has (resolve them) ... */
  accepted: RequestId[];
  /** ... and those it will never have (reject them). */
  failed: RequestId[];
  /** Sends that may not have reached their instance: let go past the bound, or lost with the session. */
  lost: number;
}

export class Outbox {
  /** The last number given to a send: the session's counter. */
  seq = 0;
  /** Every numbered send up to here is known handled. */
  private accepted = 0;
  /** Kept sends, from `head` on, in the order sent (numbered ones ascending). */
  private entries: Entry[] = [];
  private head = 0;
  /** The highest number let go past the bound before it was known handled. */
  private letGo = 0;

  constructor(private readonly max: number) {}

  /** Sends kept. */
  get size(): number {
    return this.entries.length - this.head;
  }

  /**
   * Keeps a send (numbered when `numbered`); returns its text to write now, or null while
   * reconnecting (it goes out after the resume). Throws `unavailable` when reconnecting and full.
   */
  add(instance: string, frame: Record<string, unknown>, numbered: boolean, connected: boolean, id?: RequestId): string | null {
    if (!connected && this.size >= this.max) throw new ServmanError("unavailable", "reconnecting, and the send queue is full");
    const seq = numbered ? ++this.seq : 0;
    const text = JSON.stringify(numbered ? { ...frame, seq } : frame);
    // Not numbered and sent now: nothing to do with it after a drop (as before numbered sends).
    if (!numbered && connected) return text;
    this.entries.push({ seq, instance, text, written: connected, skip: false, id });
    if (this.size > this.max) {
      const oldest = this.entries[this.head++];
      this.letGo = Math.max(this.letGo, oldest.seq);
      this.compact();
    }
    return connected ? text : null;
  }

  /** The gateway handled every numbered send up to `seq` (`accepted`). */
  acceptedThrough(seq: number): void {
    this.accepted = Math.max(this.accepted, seq);
    while (this.head < this.entries.length && this.entries[this.head].seq !== 0 && this.entries[this.head].seq <= this.accepted) this.head++;
    this.compact();
  }

  /** The client left `instance`, or it closed: its kept sends are not sent again. */
  skip(instance: string): void {
    for (let i = this.head; i < this.entries.length; i++) if (this.entries[i].instance === instance) this.entries[i].skip = true;
  }

  /**
   * The session is back. `acked`: the last numbered send the cluster has (`resumed.acked`);
   * undefined from a gateway of an earlier version, which cannot say: then only what was never
   * written goes out (what was written into the dead connection is let go, as before).
   */
  resumed(acked: number | undefined): OutboxOutcome {
    const out: OutboxOutcome = { write: [], accepted: [], failed: [], lost: 0 };
    if (acked !== undefined) {
      this.accepted = Math.max(this.accepted, acked);
      out.lost = Math.max(0, this.letGo - this.accepted);
    }
    for (const entry of this.entries.slice(this.head)) {
      const has = acked !== undefined ? entry.seq !== 0 && entry.seq <= this.accepted : entry.written;
      if (has) {
        if (entry.id !== undefined) (acked !== undefined ? out.accepted : out.failed).push(entry.id);
      } else if (entry.skip) {
        if (entry.id !== undefined) out.failed.push(entry.id);
      } else {
        out.write.push(entry.text);
      }
    }
    this.entries = this.entries.slice(this.head).filter((e) => !e.skip && e.seq > this.accepted);
    for (const entry of this.entries) entry.written = true;
    this.head = 0;
    this.letGo = 0;
    if (acked === undefined) this.entries = [];
    return out;
  }

  /**
   * A saved session was resumed on a new page: its sends up to `sendSeq` were made there, and
   * those after `acked` are gone with that page. Numbering goes on past both.
   */
  adopted(sendSeq: number, acked: number): number {
    this.seq = Math.max(this.seq, sendSeq, acked);
    this.accepted = Math.max(this.accepted, acked);
    return Math.max(0, sendSeq - acked);
  }

  /** The session is gone (a new one starts): nothing kept will reach anyone. Numbering starts again. */
  reset(): OutboxOutcome {
    const kept = this.entries.slice(this.head);
    const out: OutboxOutcome = { write: [], accepted: [], failed: [], lost: Math.max(0, this.letGo - this.accepted) };
    for (const entry of kept) {
      if (entry.id !== undefined) out.failed.push(entry.id);
      if (!entry.skip) out.lost++;
    }
    this.entries = [];
    this.head = 0;
    this.seq = 0;
    this.accepted = 0;
    this.letGo = 0;
    return out;
  }

  private compact(): void {
    if (this.head === this.entries.length) {
      this.entries = [];
      this.head = 0;
    } else if (this.head > 1_024 && this.head * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.head);
      this.head = 0;
    }
  }
}
