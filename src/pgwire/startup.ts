/**
 * Start-up negotiation: the untyped first packets (SSLRequest, GSSENCRequest,
 * CancelRequest, StartupMessage), the protocol version, and admission (the
 * connection limit, required TLS) before authentication.
 *
 * @example
 * ```ts
 * const startup = await negotiate(wire, opts);
 * if (startup && startup !== "tls") admit(opts);
 * ```
 */
import { EncryptionAnswer } from "./codes.ts";
import type { ConnectionOptions, Wire } from "./contracts.ts";
import { PgError } from "./errors.ts";
import {
  CANCEL_REQUEST,
  GSSENC_REQUEST,
  parseStartup,
  SSL_REQUEST,
  type StartupMessage,
} from "./messages.ts";

/** The outcome of negotiation: a StartupMessage, a TLS hand-over, or nothing (client left, or cancel). */
export type Negotiated = StartupMessage | "tls" | null;

/** Handles the untyped first messages; returns the StartupMessage, "tls", or null. */
export async function negotiate(wire: Wire, opts: ConnectionOptions): Promise<Negotiated> {
  for (;;) {
    const body = await wire.reader.readStartup();
    if (body === null) return null;
    const code = new DataView(body.buffer, body.byteOffset, 4).getInt32(0);
    if (code === SSL_REQUEST && body.length === 4) {
      const canTls = !opts.tls && opts.startTls !== undefined;
      await answer(wire, canTls ? EncryptionAnswer.Accept : EncryptionAnswer.Refuse);
      if (canTls) {
        if (wire.reader.buffered > 0) {
          throw new PgError("08P01", "received unencrypted data after SSL request", {
            fatal: true,
          });
        }
        return "tls";
      }
      continue;
    }
    if (code === GSSENC_REQUEST && body.length === 4) {
      await answer(wire, EncryptionAnswer.Refuse);
      continue;
    }
    if (code === CANCEL_REQUEST && body.length === 12) {
      // A CancelRequest comes on a connection of its own and gets no answer.
      const dv = new DataView(body.buffer, body.byteOffset, 12);
      opts.registry.cancel(dv.getInt32(4), dv.getInt32(8));
      return null;
    }
    const startup = parseStartup(body);
    if (startup.major !== 3) {
      throw new PgError(
        "0A000",
        `unsupported frontend protocol ${startup.major}.${startup.minor}: server supports 3.0 to 3.0`,
        { fatal: true },
      );
    }
    const unsupported = Object.keys(startup.params).filter((k) => k.startsWith("_pq_."));
    if (startup.minor > 0 || unsupported.length) {
      wire.out.negotiateProtocolVersion(0, unsupported);
    }
    return startup;
  }
}

/** Refuses a session the server has no room for (53300) or that must use TLS (28000). */
export function admit(opts: ConnectionOptions): void {
  if (opts.tooMany?.()) {
    throw new PgError("53300", "sorry, too many clients already (--max-connections)", {
      fatal: true,
    });
  }
  if (opts.requireTls && !opts.tls) {
    throw new PgError(
      "28000",
      "this server requires TLS (--pg-require-tls): connect with sslmode=require",
      { fatal: true },
    );
  }
}

/** The one-byte answer to SSLRequest / GSSENCRequest. */
async function answer(wire: Wire, c: string): Promise<void> {
  wire.out.text(c);
  await wire.flush();
}
