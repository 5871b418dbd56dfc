/**
 * JetStream publishes with acks, cheaper than nats.js's `js.publish`: one reply subscription for
 * the connection (`<inbox>.<n>` per publish) and one timer for every publish in flight, instead
 * of a request (its own timer, error object, option copies and retry loop) per message.
 * Measured against `js.publish` on the same server: about half the client CPU and round-trip
 * time per publish (docs/perf.md).
 *
 * The ack is JetStream's `PubAck` (`{stream, seq, duplicate?}`); an API error rejects with
 * nats.js's `JetStreamApiError`; no stream for the subject (a 503 "no responders" status), no
 * answer within the timeout and a closed connection with `HaError("unavailable")`. A message over
 * the server's `max_payload` is refused before it is sent with nats.js's `InvalidArgumentError`
 * (see `isPayloadTooLarge`).
 *
 * @module
 */
import { JetStreamApiError, type PubAck } from "@nats-io/jetstream";
import { createInbox, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { HaError } from "../errors/mod.ts";

/** The header JetStream de-duplicates on. */
const MSG_ID = "Nats-Msg-Id";

/** What a JetStream publish needs: the subset of nats.js's `JetStreamClient` ha uses. */
export interface StreamPublish {
  publish(
    subject: string,
    data: string,
    opts: { msgID: string; timeout: number; headers: MsgHdrs },
  ): Promise<PubAck>;
}

interface Waiting {
  resolve: (a: PubAck) => void;
  reject: (e: unknown) => void;
  deadline: number;
}

/** {@link StreamPublish} over one connection. */
export class JetStreamPublisher implements StreamPublish {
  private readonly prefix: string;
  private readonly waiting = new Map<string, Waiting>();
  private next = 0;
  private timer: ReturnType<typeof setInterval> | null = null;
  private closedError: HaError | null = null;

  constructor(private readonly nc: NatsConnection) {
    this.prefix = `${createInbox()}.`;
    nc.subscribe(`${this.prefix}*`, {
      callback: (err, m) => {
        if (err) return this.failAll(new HaError("unavailable", `publish acks: ${err.message}`));
        const w = this.waiting.get(m.subject);
        if (!w) return; // answered after its timeout
        this.waiting.delete(m.subject);
        if (m.headers?.code === 503) {
          w.reject(new HaError("unavailable", "no JetStream stream answers this subject"));
          return;
        }
        try {
          const v = JSON.parse(m.string()) as PubAck & {
            error?: ConstructorParameters<typeof JetStreamApiError>[0];
          };
          if (v.error) w.reject(new JetStreamApiError(v.error));
          else w.resolve({ ...v, duplicate: v.duplicate ?? false });
        } catch (e) {
          w.reject(e);
        }
      },
    });
    nc.closed().then(() => this.failAll(new HaError("unavailable", "NATS connection closed")));
  }

  publish(
    subject: string,
    data: string,
    opts: { msgID: string; timeout: number; headers: MsgHdrs },
  ): Promise<PubAck> {
    if (this.closedError) return Promise.reject(this.closedError);
    const reply = this.prefix + (this.next++).toString(36);
    opts.headers.set(MSG_ID, opts.msgID);
    try {
      this.nc.publish(subject, data, { reply, headers: opts.headers });
    } catch (e) {
      return Promise.reject(e);
    }
    return new Promise<PubAck>((resolve, reject) => {
      this.waiting.set(reply, { resolve, reject, deadline: Date.now() + opts.timeout });
      if (this.timer === null) {
        this.timer = setInterval(() => this.expire(), Math.min(1000, opts.timeout));
        Deno.unrefTimer(this.timer);
      }
    });
  }

  /** Rejects publishes past their deadline (the map is in publish order). */
  private expire(): void {
    const now = Date.now();
    for (const [reply, w] of this.waiting) {
      if (w.deadline > now) continue;
      this.waiting.delete(reply);
      w.reject(new HaError("unavailable", "JetStream did not acknowledge the publish in time"));
    }
    if (this.waiting.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private failAll(e: HaError): void {
    if (this.nc.isClosed()) this.closedError = e;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}
