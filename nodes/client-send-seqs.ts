/**
 * The numbered sends an instance's node received, per client (docs/protocol.md#numbered-sends):
 * the highest number only, one per member. A resuming gateway asks for it (`resume_answer`), so
 * a gateway killed with what it knew of its clients' sends loses none of that; and a repeat of a
 * send the node has already received (relayed twice across a resume) is not handed to the
 * service again.
 *
 * The number is read from the pass-through `message` text, where the gateway writes it right after
 * `client` (`{"type":"message","client":"S","seq":n,...`): a few string compares, no parse.
 */
import { MESSAGE_PREFIX, type ToSession } from "../src/protocol/bus-messages.js";

const CLIENT_KEY = ',"client":"';
const SEQ_KEY = ',"seq":';
/** Where the client id starts in a pass-through message. */
const CLIENT_AT = MESSAGE_PREFIX.length + CLIENT_KEY.length;

export class ClientSendSeqs {
  private readonly received = new Map<string, number>();

  /**
   * Notes the number of a pass-through message (MESSAGE_PREFIX) if it has one; false when the
   * client's send with that number was received already (the message is a repeat).
   */
  fresh(payload: string): boolean {
    if (!payload.startsWith(CLIENT_KEY, MESSAGE_PREFIX.length)) return true;
    // Session ids hold no quote or backslash: the next quote closes the id.
    const end = payload.indexOf('"', CLIENT_AT);
    if (end < 0 || !payload.startsWith(SEQ_KEY, end + 1)) return true;
    let at = end + 1 + SEQ_KEY.length;
    let seq = 0;
    for (let c = payload.charCodeAt(at); c >= 48 && c <= 57 && seq < Number.MAX_SAFE_INTEGER; c = payload.charCodeAt(++at)) seq = seq * 10 + (c - 48);
    return seq === 0 || this.note(payload.slice(CLIENT_AT, end), seq);
  }

  /** Notes send `seq` of `client`; false when it was received already. */
  note(client: string, seq: number): boolean {
    if (seq <= (this.received.get(client) ?? 0)) return false;
    this.received.set(client, seq);
    return true;
  }

  /** The client left: its numbers are no longer asked for. */
  forget(client: string): void {
    this.received.delete(client);
  }

  /**
   * The answer to a `resume` of `client`, sent at once (before the node waits for the client's old
   * gateway): what the node knows of the client that the resuming gateway needs before `resumed`.
   */
  resumeAnswer(instance: string, client: string): string {
    return JSON.stringify({ type: "resume_answer", instance, received: this.received.get(client) ?? 0 } satisfies ToSession);
  }
}
