/**
 * The authentication flow after the StartupMessage: the SCRAM-SHA-256, md5 or
 * cleartext password exchange (with a small message limit, as the client is
 * not trusted yet), then the greeting of an accepted session. The deadline for
 * start-up plus authentication is {@link AUTH_TIMEOUT_MS} unless configured.
 *
 * @example
 * ```ts
 * const user = await authenticate(wire, startup, opts);
 * if (user !== null) greet(wire.out, settings, keys);
 * ```
 */
import { authFailed, SCRAM_MECHANISM, ScramExchange } from "./auth.ts";
import type { MessageWriter } from "./backend.ts";
import { REPORTED, type Settings } from "./settings.ts";
import { Frontend } from "./codes.ts";
import type { ConnectionOptions, Wire } from "./contracts.ts";
import { PgError } from "./errors.ts";
import { BodyReader, type StartupMessage, utf8 } from "./messages.ts";

/**
 * Largest message before authentication (SASL responses, passwords): a few hundred bytes are
 * plenty, and an unauthenticated client must not make the server buffer megabytes.
 */
export const MAX_AUTH_MESSAGE_BYTES = 1024;

/** Default time for start-up and authentication (ms). */
export const AUTH_TIMEOUT_MS = 60_000;

/** Runs the password exchange; returns the authenticated user, or null if the client left. */
export async function authenticate(
  wire: Wire,
  startup: StartupMessage,
  opts: Pick<ConnectionOptions, "credentials" | "authMethod">,
): Promise<string | null> {
  const user = startup.params.user;
  if (!user) {
    throw new PgError("28000", "no PostgreSQL user name specified in startup packet", {
      fatal: true,
    });
  }
  const creds = opts.credentials;
  switch (opts.authMethod) {
    case "scram-sha-256": {
      wire.out.authSasl([SCRAM_MECHANISM]);
      const first = await readPassword(wire);
      if (!first) return null;
      const r = new BodyReader(first);
      const mechanism = r.cstring();
      if (mechanism !== SCRAM_MECHANISM) {
        throw new PgError(
          "28000",
          "client selected an invalid SASL authentication mechanism",
          { fatal: true },
        );
      }
      const len = r.int32();
      const data = utf8(len < 0 ? new Uint8Array() : r.bytes(len));
      const exchange = new ScramExchange(await creds.scram());
      wire.out.authSaslContinue(exchange.clientFirst(data));
      const final = await readPassword(wire);
      if (!final) return null;
      const serverFinal = await exchange.clientFinal(utf8(final));
      if (!exchange.verified || user !== creds.user) throw authFailed(user);
      wire.out.authSaslFinal(serverFinal);
      break;
    }
    case "md5": {
      const salt = crypto.getRandomValues(new Uint8Array(4));
      wire.out.authMd5(salt);
      const body = await readPassword(wire);
      if (!body) return null;
      if (!creds.checkMd5(user, new BodyReader(body).cstring(), salt)) throw authFailed(user);
      break;
    }
    case "password": {
      wire.out.authCleartext();
      const body = await readPassword(wire);
      if (!body) return null;
      if (!creds.checkCleartext(user, new BodyReader(body).cstring())) throw authFailed(user);
      break;
    }
  }
  return user;
}

/** AuthenticationOk, the reported settings and the cancel keys of an accepted session. */
export function greet(
  out: MessageWriter,
  settings: Settings,
  keys: { pid: number; secret: number },
): void {
  out.authOk();
  for (const name of REPORTED) out.parameterStatus(name, settings.get(name) ?? "");
  out.backendKeyData(keys.pid, keys.secret);
}

/** Sends what is pending and reads the client's password message (small, as not yet trusted). */
async function readPassword(wire: Wire): Promise<Uint8Array | null> {
  await wire.flush();
  const f = await wire.reader.read(MAX_AUTH_MESSAGE_BYTES);
  if (f === null) return null;
  if (f.type !== Frontend.Password) {
    throw new PgError(
      "08P01",
      `expected password response, got message type ${f.type}`,
      { fatal: true },
    );
  }
  return f.body;
}
