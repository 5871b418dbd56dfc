import assert from "node:assert/strict";
import {
  Credentials,
  md5Response,
  saltedPassword,
  ScramExchange,
  scramSecret,
} from "../../src/pgwire/auth.ts";
import { PgError } from "../../src/pgwire/errors.ts";

const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const enc = new TextEncoder();

// RFC 7677 §3 example: user "user", password "pencil".
const RFC = {
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  serverFirst:
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," +
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

Deno.test("scram: RFC 7677 test vector", async () => {
  const secret = await scramSecret("pencil", b64(RFC.salt), 4096);
  const x = new ScramExchange(secret, RFC.serverNonce);
  assert.deepEqual(x.clientFirst(RFC.clientFirst), RFC.serverFirst);
  assert.deepEqual(await x.clientFinal(RFC.clientFinal), RFC.serverFinal);
  assert(x.verified);
});

Deno.test("scram: wrong password is not verified", async () => {
  const secret = await scramSecret("not pencil", b64(RFC.salt), 4096);
  const x = new ScramExchange(secret, RFC.serverNonce);
  x.clientFirst(RFC.clientFirst);
  assert.deepEqual(await x.clientFinal(RFC.clientFinal), "");
  assert.deepEqual(x.verified, false);
});

/** A SCRAM client (RFC 5802) to drive the server with a random salt. */
async function clientProof(password: string, serverFirst: string, clientFirstBare: string) {
  const attrs = Object.fromEntries(serverFirst.split(",").map((p) => [p[0], p.slice(2)]));
  const salted = await saltedPassword(password, b64(attrs.s), Number(attrs.i));
  const key = (k: Uint8Array) =>
    crypto.subtle.importKey(
      "raw",
      k as Uint8Array<ArrayBuffer>,
      {
        name: "HMAC",
        hash: "SHA-256",
      },
      false,
      ["sign"],
    );
  const hmac = async (k: Uint8Array, s: string) =>
    new Uint8Array(await crypto.subtle.sign("HMAC", await key(k), enc.encode(s)));
  const clientKey = await hmac(salted, "Client Key");
  const storedKey = new Uint8Array(await crypto.subtle.digest("SHA-256", clientKey));
  const withoutProof = `c=biws,r=${attrs.r}`;
  const sig = await hmac(storedKey, `${clientFirstBare},${serverFirst},${withoutProof}`);
  const proof = clientKey.map((b, i) => b ^ sig[i]);
  return `${withoutProof},p=${btoa(String.fromCharCode(...proof))}`;
}

Deno.test("scram: a client with the right password is verified (random salt)", async () => {
  const creds = new Credentials("ha", "s3cret é");
  const x = new ScramExchange(await creds.scram());
  const serverFirst = x.clientFirst("n,,n=,r=abcdefghijkl");
  const final = await clientProof("s3cret é", serverFirst, "n=,r=abcdefghijkl");
  const v = await x.clientFinal(final);
  assert(x.verified);
  assert(v.startsWith("v="));
});

Deno.test("scram: malformed messages are protocol errors", async () => {
  const secret = await scramSecret("pw");
  for (const bad of ["", "x,,n=,r=a", "n,,n=,", "n,,n=,r=a,b", "p=tls-server-end-point,,n=,r=a"]) {
    assert.throws(() => new ScramExchange(secret).clientFirst(bad), PgError);
  }
  const y = new ScramExchange(await scramSecret("pw"));
  y.clientFirst("n,,n=,r=nonce");
  await assert.rejects(() => y.clientFinal("c=biws,r=wrongnonce,p=AAAA"), PgError);
  await assert.rejects(() => y.clientFinal("c=biws,r=nonce"), PgError);
  await assert.rejects(() => y.clientFinal("c=eSws,r=nonce,p=AAAA"), PgError);
});

Deno.test("md5: response matches PostgreSQL's md5(md5(password||user)||salt)", () => {
  // computed independently with Python hashlib
  assert.deepEqual(
    md5Response("alice", "secret", new Uint8Array([1, 2, 3, 4])),
    "md598a0412b9c31436fc53776e863350083",
  );
  const creds = new Credentials("alice", "secret");
  const salt = new Uint8Array([1, 2, 3, 4]);
  assert(creds.checkMd5("alice", "md598a0412b9c31436fc53776e863350083", salt));
  assert.deepEqual(creds.checkMd5("bob", "md598a0412b9c31436fc53776e863350083", salt), false);
  assert.deepEqual(creds.checkMd5("alice", "md5000", salt), false);
});

Deno.test("cleartext: exact user and password", () => {
  const creds = new Credentials("ha", "ha");
  assert(creds.checkCleartext("ha", "ha"));
  assert.deepEqual(creds.checkCleartext("ha", "hA"), false);
  assert.deepEqual(creds.checkCleartext("other", "ha"), false);
});
