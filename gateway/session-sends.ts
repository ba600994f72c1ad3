/**
 * A session's `send` requests (docs/protocol.md): each becomes the task protocol's `message`
 * (JSON text) and is published on its instance's channel, or waits behind a join of that
 * instance still under way (session-joins.ts). A frame the fast path read
 * (src/protocol/send-frame.ts) comes with its message spliced from the frame's own text; one the
 * slow path parsed has it encoded here; both are the same text.
 */
import { ServmanError } from "../src/errors.js";
import type { ToInstance } from "../src/protocol/bus-messages.js";
import type { RequestId, SendRequest, ServerFrame } from "../src/protocol/client-messages.js";
import { sendMessageText, type ScannedSend } from "../src/protocol/send-frame.js";
import { publish } from "../src/pubsub.js";
import type { SessionContext } from "./session-context.js";
import type { SessionJoins } from "./session-joins.js";
import type { SendSeqs } from "./send-seqs.js";

/** What sends need from their session. */
export interface SendingSession {
  readonly ctx: SessionContext;
  readonly joins: Pick<SessionJoins, "queue">;
  readonly joined: ReadonlySet<string>;
  /** The session's numbered sends (send-seqs.ts). */
  readonly seqs: Pick<SendSeqs, "take">;
  id(): string;
  send(frame: ServerFrame): void;
  fail(err: unknown, id: RequestId | undefined): void;
  /** A numbered send was relayed or refused. */
  settled(seq: number | undefined): void;
}

export class SessionSends {
  constructor(private readonly s: SendingSession) {}

  /** A `send` frame the fast path read. */
  scanned(send: ScannedSend): void {
    this.message(send.instance, sendMessageText(this.s.id(), send), send.id, send.ack, send.seq);
  }

  /** A `send` the slow path parsed and checked. */
  request(req: SendRequest): void {
    const seq = req.seq;
    // `seq` right after `client`: the node reads it there without parsing (nodes/client-send-seqs.ts).
    const message: ToInstance =
      seq === undefined
        ? { type: "message", client: this.s.id(), action: req.action, data: req.data ?? null }
        : { type: "message", client: this.s.id(), seq, action: req.action, data: req.data ?? null };
    if (req.channel !== undefined) message.channel = req.channel;
    this.message(req.instance, JSON.stringify(message), req.id, req.ack === true, seq);
  }

  /** Relays a client's `send`, already the task protocol's `message` (JSON text), to `instance`. */
  private message(instance: string, payload: string, id: RequestId | undefined, ackAsked: boolean, seq: number | undefined): void {
    // A send asking for `ack` is answered `sent` once published (see relay).
    const ack = ackAsked && id !== undefined;
    if (seq !== undefined && !this.s.seqs.take(seq)) {
      // Taken already (sent again after a resume, or twice): not relayed twice, but answered.
      if (ack) this.s.send({ type: "sent", id, instance });
      return;
    }
    if (this.s.joins.queue(instance, payload, id, ack, seq)) return;
    if (this.s.joined.has(instance)) {
      this.relay(instance, payload, id, ack, seq);
    } else {
      this.s.fail(new ServmanError("not_joined", `not joined to ${instance}; join it first`), id);
      this.s.settled(seq);
    }
  }

  /** Publishes a client's message; one that reached no node, or no Redis, is reported to the sender. */
  relay(instance: string, payload: string, id: RequestId | undefined, ack = false, seq?: number): void {
    const { ctx } = this.s;
    publish(ctx.redis, ctx.keys.instanceChannel(instance), payload).then(
      (receivers) => {
        // Its node is gone, or resubscribing after a Redis restart: the sender must not think it arrived.
        if (receivers === 0) this.s.fail(new ServmanError("unavailable", `message not delivered: no node is listening for ${instance}; try again`), id);
        // Only a send that asked for it is answered: plain sends cost no reply frame.
        else if (ack && id !== undefined) this.s.send({ type: "sent", id, instance });
        this.s.settled(seq);
      },
      (err: unknown) => {
        this.s.fail(new ServmanError("unavailable", "message not delivered: Redis is unreachable", { cause: err }), id);
        this.s.settled(seq);
      },
    );
  }
}
