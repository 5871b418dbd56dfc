/** pgwire type mapping: column OIDs, text/binary output, Bind parameter decoding. */
import assert from "node:assert/strict";
import { PgError } from "../../src/pgwire/errors.ts";
import {
  byteaHex,
  columnOid,
  declaredOid,
  decodeNumeric,
  describedOid,
  encodeBinary,
  encodeNumeric,
  encodeText,
  OID,
  plainNumber,
} from "../../src/pgwire/types.ts";
import { decodeParam, parseByteaText } from "../../src/pgwire/params.ts";

const enc = new TextEncoder();
const t = (s: string) => enc.encode(s);
const be = (size: number, set: (dv: DataView) => void) => {
  const b = new Uint8Array(size);
  set(new DataView(b.buffer));
  return b;
};

Deno.test("declared types map by name and by SQLite affinity", () => {
  const cases: [string | null, number | null][] = [
    ["INTEGER", OID.int8],
    ["int", OID.int8],
    ["BIGINT", OID.int8],
    ["REAL", OID.float8],
    ["DOUBLE PRECISION", OID.float8],
    ["FLOAT", OID.float8],
    ["TEXT", OID.text],
    ["VARCHAR(20)", OID.varchar],
    ["CHARACTER VARYING(5)", OID.varchar],
    ["CLOB", OID.text],
    ["BLOB", OID.bytea],
    ["BYTEA", OID.bytea],
    ["BOOLEAN", OID.bool],
    ["bool", OID.bool],
    ["NUMERIC(10,2)", OID.numeric],
    ["DECIMAL", OID.numeric],
    ["DATE", OID.date],
    ["TIMESTAMP", OID.timestamp],
    ["DATETIME", OID.timestamp],
    ["TIMESTAMPTZ", OID.timestamptz],
    ["timestamp with time zone", OID.timestamptz],
    ["JSON", OID.json],
    ["JSONB", OID.jsonb],
    ["UUID", OID.uuid],
    ["WHATEVER", null],
    [null, null],
  ];
  for (const [decl, oid] of cases) assert.equal(declaredOid(decl), oid, String(decl));
  assert.equal(describedOid(null), OID.text);
});

Deno.test("column OID: declared type when the first value fits, else the value's class", () => {
  assert.equal(columnOid("INTEGER", [[1n]], 0), OID.int8);
  assert.equal(columnOid("INTEGER", [[null], ["abc"]], 0), OID.text);
  assert.equal(columnOid("BOOLEAN", [[1n]], 0), OID.bool);
  assert.equal(columnOid("BOOLEAN", [[7n]], 0), OID.int8);
  assert.equal(columnOid("TIMESTAMP", [["2024-01-02 03:04:05"]], 0), OID.timestamp);
  assert.equal(columnOid("TIMESTAMP", [[1700000000n]], 0), OID.int8);
  assert.equal(columnOid("DATE", [["2024-01-02"]], 0), OID.date);
  assert.equal(columnOid("TEXT", [[new Uint8Array([1])]], 0), OID.bytea);
  assert.equal(columnOid(null, [[1.5]], 0), OID.float8);
  assert.equal(columnOid(null, [[2n]], 0), OID.int8);
  assert.equal(columnOid(null, [[null]], 0), OID.text);
  assert.equal(columnOid("NUMERIC", [[1.25]], 0), OID.numeric);
  assert.equal(columnOid("NUMERIC", [["abc"]], 0), OID.text);
  assert.equal(columnOid("UUID", [["not-a-uuid"]], 0), OID.text);
});

Deno.test("text output", () => {
  assert.equal(encodeText(null, OID.text), null);
  assert.equal(encodeText(1n, OID.bool), "t");
  assert.equal(encodeText(0n, OID.bool), "f");
  assert.equal(encodeText("yes", OID.bool), "t");
  assert.equal(encodeText(9007199254740993n, OID.int8), "9007199254740993");
  assert.equal(encodeText(1.5, OID.float8), "1.5");
  assert.equal(encodeText(Infinity, OID.float8), "Infinity");
  assert.equal(encodeText(NaN, OID.float8), "NaN");
  assert.equal(encodeText(1e-7, OID.numeric), "0.0000001");
  assert.equal(encodeText(new Uint8Array([0, 255]), OID.bytea), "\\x00ff");
  assert.equal(encodeText("2024-01-02T03:04:05.120Z", OID.timestamp), "2024-01-02 03:04:05.12");
  assert.equal(encodeText("2024-01-02 03:04:05", OID.timestamptz), "2024-01-02 03:04:05+00");
  assert.equal(encodeText("2024-01-02 05:04:05+02:00", OID.timestamptz), "2024-01-02 03:04:05+00");
  assert.equal(encodeText("not a time", OID.timestamp), "not a time");
  assert.equal(byteaHex(new Uint8Array([0xde, 0xad])), "\\xdead");
  assert.equal(plainNumber(1.5e21), "1500000000000000000000");
  assert.equal(plainNumber(-2.5e-3), "-0.0025");
});

Deno.test("binary output", () => {
  assert.deepEqual(encodeBinary(1n, OID.bool), new Uint8Array([1]));
  assert.deepEqual(encodeBinary(-2n, OID.int8), be(8, (d) => d.setBigInt64(0, -2n)));
  assert.deepEqual(encodeBinary(7n, OID.int4), be(4, (d) => d.setInt32(0, 7)));
  assert.deepEqual(encodeBinary(2.5, OID.float8), be(8, (d) => d.setFloat64(0, 2.5)));
  assert.deepEqual(encodeBinary("hé", OID.text), t("hé"));
  assert.deepEqual(encodeBinary('{"a":1}', OID.jsonb), new Uint8Array([1, ...t('{"a":1}')]));
  assert.deepEqual(encodeBinary("2000-01-02", OID.date), be(4, (d) => d.setInt32(0, 1)));
  assert.deepEqual(
    encodeBinary("2000-01-01 00:00:01.5", OID.timestamp),
    be(8, (d) => d.setBigInt64(0, 1_500_000n)),
  );
  assert.equal(encodeBinary(null, OID.int8), null);
  assert.throws(() => encodeBinary("abc", OID.int8), PgError);
  assert.throws(() => encodeBinary("abc", OID.uuid), PgError);
});

Deno.test("binary numeric round-trips", () => {
  for (
    const s of ["0", "1", "-1", "12.50", "10000", "123456789.000123", "0.0001", "-0.5", "NaN"]
  ) {
    assert.equal(decodeNumeric(encodeNumeric(s)), s, s);
  }
  // 12.5 = digits [12, 5000], weight 0, dscale 1
  assert.deepEqual(
    encodeNumeric("12.5"),
    new Uint8Array([0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88]),
  );
  assert.equal(decodeNumeric(encodeNumeric("1e3")), "1000");
  assert.throws(() => encodeNumeric("1.2.3"), PgError);
});

Deno.test("text parameters are bound by the OID the client sent", () => {
  assert.equal(decodeParam(t("42"), OID.int4, 0), 42n);
  assert.equal(decodeParam(t("-9223372036854775808"), OID.int8, 0), -9223372036854775808n);
  assert.equal(decodeParam(t("1.5"), OID.float8, 0), 1.5);
  assert.equal(decodeParam(t("12"), OID.numeric, 0), 12n);
  assert.equal(decodeParam(t("12.25"), OID.numeric, 0), 12.25);
  assert.equal(decodeParam(t("99999999999999999999"), OID.numeric, 0), "99999999999999999999");
  assert.equal(decodeParam(t("true"), OID.bool, 0), 1n);
  assert.equal(decodeParam(t("f"), OID.bool, 0), 0n);
  assert.deepEqual(decodeParam(t("\\x0102"), OID.bytea, 0), new Uint8Array([1, 2]));
  assert.equal(decodeParam(t("42"), 0, 0), "42");
  assert.equal(decodeParam(t("2024-01-01"), OID.date, 0), "2024-01-01");
  assert.equal(decodeParam(null, OID.int4, 0), null);
  assert.throws(() => decodeParam(t("x"), OID.int4, 0), (e: PgError) => e.code === "22P02");
  assert.throws(() => decodeParam(t("99999999999999999999"), OID.int8, 0), PgError);
  assert.throws(() => decodeParam(t("maybe"), OID.bool, 0), PgError);
  assert.throws(
    () => decodeParam(new Uint8Array([0xff]), OID.text, 0),
    (e: PgError) => e.code === "22021",
  );
});

Deno.test("binary parameters", () => {
  assert.equal(decodeParam(be(2, (d) => d.setInt16(0, -3)), OID.int2, 1), -3n);
  assert.equal(decodeParam(be(4, (d) => d.setInt32(0, 70000)), OID.int4, 1), 70000n);
  assert.equal(decodeParam(be(8, (d) => d.setBigInt64(0, 2n ** 62n)), OID.int8, 1), 2n ** 62n);
  assert.equal(decodeParam(be(4, (d) => d.setFloat32(0, 0.5)), OID.float4, 1), 0.5);
  assert.equal(decodeParam(be(8, (d) => d.setFloat64(0, -0.25)), OID.float8, 1), -0.25);
  assert.equal(decodeParam(new Uint8Array([1]), OID.bool, 1), 1n);
  assert.deepEqual(decodeParam(new Uint8Array([9, 8]), OID.bytea, 1), new Uint8Array([9, 8]));
  assert.deepEqual(decodeParam(new Uint8Array([9, 8]), 0, 1), new Uint8Array([9, 8]));
  assert.equal(decodeParam(t("hé"), OID.varchar, 1), "hé");
  assert.equal(decodeParam(new Uint8Array([1, ...t("{}")]), OID.jsonb, 1), "{}");
  assert.equal(decodeParam(be(4, (d) => d.setInt32(0, -1)), OID.date, 1), "1999-12-31");
  assert.equal(
    decodeParam(be(8, (d) => d.setBigInt64(0, 86_400_000_001n)), OID.timestamp, 1),
    "2000-01-02 00:00:00.000001",
  );
  assert.equal(
    decodeParam(new Uint8Array(16).fill(0xab), OID.uuid, 1),
    "abababab-abab-abab-abab-abababababab",
  );
  assert.equal(decodeParam(encodeNumeric("-12.5"), OID.numeric, 1), -12.5);
  assert.throws(() => decodeParam(new Uint8Array(3), OID.int4, 1), PgError);
});

Deno.test("text bytea: hex and escape formats", () => {
  assert.deepEqual(parseByteaText("\\xDEAD"), new Uint8Array([0xde, 0xad]));
  assert.deepEqual(parseByteaText("a\\\\b\\001"), new Uint8Array([97, 92, 98, 1]));
  assert.throws(() => parseByteaText("\\xABC"), PgError);
  assert.throws(() => parseByteaText("\\9"), PgError);
});
