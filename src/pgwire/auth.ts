/**
 * Password authentication, server side: SCRAM-SHA-256 (RFC 5802 / RFC 7677,
 * salted PBKDF2 via WebCrypto, no channel binding), md5 and cleartext.
 *
 * @example
 * ```ts
 * const creds = new Credentials("ha", "ha");
 * const scram = new ScramExchange(await creds.scram());
 * const serverFirst = scram.clientFirst("n,,n=,r=abc");
 * ```
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { PgError } from "./errors.ts";

/** Password authentication methods a server can ask for. */
export type AuthMethod = "scram-sha-256" | "md5" | "password";

/** The accepted values of {@link AuthMethod}. */
export const AUTH_METHODS: readonly AuthMethod[] = ["scram-sha-256", "md5", "password"];

/** The mechanism name advertised in AuthenticationSASL. */
export const SCRAM_MECHANISM = "SCRAM-SHA-256";

/** PBKDF2 iteration count (PostgreSQL's default `scram_iterations`). */
export const SCRAM_ITERATIONS = 4096;

const enc = new TextEncoder();

/** The salted secrets of one SCRAM-SHA-256 password. */
export interface ScramSecret {
  salt: Uint8Array;
  iterations: number;
  storedKey: Uint8Array;
  serverKey: Uint8Array;
}

async function hmac(key: Uint8Array, data: Uint8Array | string): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const bytes = typeof data === "string" ? enc.encode(data) : data;
  return new Uint8Array(await crypto.subtle.sign("HMAC", k, bytes as Uint8Array<ArrayBuffer>));
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>),
  );
}

/** Hi() of RFC 5802: PBKDF2-HMAC-SHA-256 of the (SASLprep-free) password. */
export async function saltedPassword(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey("raw", enc.encode(password), "PBKDF2", false, [
    "deriveBits",
  ]);
  const bits = await crypto.subtle.deriveBits(
    { name: "PBKDF2", hash: "SHA-256", salt: salt as Uint8Array<ArrayBuffer>, iterations },
    key,
    256,
  );
  return new Uint8Array(bits);
}

/** Derives the stored and server keys of a password with a fresh random salt. */
export async function scramSecret(
  password: string,
  salt: Uint8Array = crypto.getRandomValues(new Uint8Array(16)),
  iterations = SCRAM_ITERATIONS,
): Promise<ScramSecret> {
  const salted = await saltedPassword(password, salt, iterations);
  const clientKey = await hmac(salted, "Client Key");
  return {
    salt,
    iterations,
    storedKey: await sha256(clientKey),
    serverKey: await hmac(salted, "Server Key"),
  };
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

function unb64(s: string): Uint8Array {
  let bin: string;
  try {
    bin = atob(s);
  } catch {
    throw malformed("invalid base64");
  }
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

function malformed(what: string): PgError {
  return new PgError("08P01", `malformed SCRAM message: ${what}`, { fatal: true });
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Parses `k=v,k=v` attributes (values may contain `=`). */
function attributes(s: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const part of s.split(",")) {
    const i = part.indexOf("=");
    if (i !== 1) throw malformed(`bad attribute ${JSON.stringify(part.slice(0, 20))}`);
    m.set(part[0], part.slice(2));
  }
  return m;
}

/**
 * One SCRAM-SHA-256 exchange: `clientFirst` → server-first-message,
 * `clientFinal` → server-final-message (or a 28P01 error when the proof is
 * wrong; {@link ScramExchange.verified} tells the outcome).
 */
export class ScramExchange {
  private clientFirstBare = "";
  private serverFirst = "";
  private nonce = "";
  private gs2Header = "";
  /** True once the client proved knowledge of the password. */
  verified = false;

  /**
   * @param secret the password's salted keys
   * @param serverNonce fixed server nonce (tests); random by default
   */
  constructor(
    private readonly secret: ScramSecret,
    private readonly serverNonce = b64(crypto.getRandomValues(new Uint8Array(18))),
  ) {}

  /** Handles client-first-message; returns server-first-message. */
  clientFirst(message: string): string {
    // gs2-header: cbind-flag "," [authzid] ","
    const m = /^([ny]|p=[^,]*),([^,]*),(.*)$/s.exec(message);
    if (!m) throw malformed("bad gs2 header");
    if (m[1].startsWith("p=")) {
      throw new PgError("08P01", "channel binding is not supported", { fatal: true });
    }
    this.gs2Header = `${m[1]},${m[2]},`;
    this.clientFirstBare = m[3];
    const attrs = attributes(this.clientFirstBare);
    const clientNonce = attrs.get("r");
    if (!clientNonce || !/^[\x21-\x2b\x2d-\x7e]+$/.test(clientNonce)) {
      throw malformed("bad client nonce");
    }
    if (attrs.has("m")) throw malformed("mandatory extensions are not supported");
    this.nonce = clientNonce + this.serverNonce;
    this.serverFirst = `r=${this.nonce},s=${b64(this.secret.salt)},i=${this.secret.iterations}`;
    return this.serverFirst;
  }

  /** Handles client-final-message; returns server-final-message when the proof is valid. */
  async clientFinal(message: string): Promise<string> {
    const i = message.lastIndexOf(",p=");
    if (i < 0) throw malformed("missing proof");
    const withoutProof = message.slice(0, i);
    const attrs = attributes(withoutProof);
    const proof = unb64(message.slice(i + 3));
    if (attrs.get("c") !== btoa(this.gs2Header)) throw malformed("channel binding mismatch");
    if (attrs.get("r") !== this.nonce) throw malformed("nonce mismatch");
    const authMessage = `${this.clientFirstBare},${this.serverFirst},${withoutProof}`;
    const clientSignature = await hmac(this.secret.storedKey, authMessage);
    if (proof.length !== clientSignature.length) return this.fail();
    const clientKey = proof.map((b, j) => b ^ clientSignature[j]);
    if (!equal(await sha256(clientKey), this.secret.storedKey)) return this.fail();
    this.verified = true;
    return `v=${b64(await hmac(this.secret.serverKey, authMessage))}`;
  }

  private fail(): string {
    this.verified = false;
    return "";
  }
}

/** `"md5" + hex(md5(hex(md5(password + user)) + salt))`, what a client sends. */
export function md5Response(user: string, password: string, salt: Uint8Array): string {
  const inner = createHash("md5").update(password + user).digest("hex");
  return "md5" + createHash("md5").update(inner).update(salt).digest("hex");
}

/** Constant-time comparison of two strings. */
export function safeEqual(a: string, b: string): boolean {
  const x = enc.encode(a);
  const y = enc.encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The one user/password pair a server accepts, with its SCRAM secret derived
 * once (lazily) and reused for every connection.
 */
export class Credentials {
  private secret: Promise<ScramSecret> | null = null;

  constructor(readonly user: string, readonly password: string) {}

  /** The SCRAM secret of the password (derived once). */
  scram(): Promise<ScramSecret> {
    this.secret ??= scramSecret(this.password);
    return this.secret;
  }

  /** Checks an md5 PasswordMessage. */
  checkMd5(user: string, response: string, salt: Uint8Array): boolean {
    const expected = md5Response(this.user, this.password, salt);
    return user === this.user && safeEqual(response, expected);
  }

  /** Checks a cleartext PasswordMessage. */
  checkCleartext(user: string, password: string): boolean {
    return safeEqual(password, this.password) && user === this.user;
  }
}

/** The FATAL error of a failed authentication. */
export function authFailed(user: string): PgError {
  return new PgError("28P01", `password authentication failed for user "${user}"`, {
    fatal: true,
  });
}
