/** HTTP value mapping and status codes. */
import assert from "node:assert/strict";
import { encodeValue, parseJson, statusOf, stringifyJson } from "../../src/http/mod.ts";
import { decodeQueryRequest } from "../../src/http/json.ts";
import { HaError } from "../../src/errors/mod.ts";

Deno.test("parseJson keeps big integers exact", () => {
  assert.deepEqual(parseJson('{"a": 9223372036854775807, "b": 1.5, "c": 3}'), {
    a: 9223372036854775807n,
    b: 1.5,
    c: 3,
  });
});

Deno.test("encodeValue: exact integers, REAL with a point, BLOB base64, NULL", () => {
  const row = [9223372036854775807n, 5n, 1, 0.25, new Uint8Array([0, 1, 255]), null, "é", Infinity];
  assert.equal(
    stringifyJson(row.map((v) => encodeValue(v as never))),
    '[9223372036854775807,5,1.0,0.25,"AAH/",null,"é",1e999]',
  );
});

Deno.test("decodeQueryRequest validates shapes", () => {
  assert.deepEqual(decodeQueryRequest({ sql: "SELECT 1" }), {
    statements: [{ sql: "SELECT 1" }],
    array: false,
  });
  const blob = decodeQueryRequest([{ sql: "SELECT ?", params: [{ base64: "AAE=" }] }]);
  assert.deepEqual(blob.statements[0].params, [new Uint8Array([0, 1])]);
  assert.throws(() => decodeQueryRequest({ sql: "x", extra: 1 }), /unknown field "extra"/);
  assert.throws(() => decodeQueryRequest([]), /empty/);
  assert.throws(() => decodeQueryRequest({ sql: "x", params: [[1]] }), HaError);
});

Deno.test("error codes map to HTTP statuses", () => {
  assert.equal(statusOf("bad_request"), 400);
  assert.equal(statusOf("sql"), 400);
  assert.equal(statusOf("constraint"), 409);
  assert.equal(statusOf("not_found"), 404);
  assert.equal(statusOf("unauthorized"), 401);
  assert.equal(statusOf("too_large"), 413);
  assert.equal(statusOf("unavailable"), 503);
  assert.equal(statusOf("internal"), 500);
});
