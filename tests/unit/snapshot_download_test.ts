/** Snapshot downloads without NATS: the retry on replacement, and staged files cleaned up. */
import assert from "node:assert/strict";
import { HaError } from "../../src/errors/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { isReplaced, retryReplaced, stagedStream } from "../../src/snapshot/download.ts";
import {
  REPLACED_ATTEMPTS,
  SnapshotReplacedError,
  type StoredSnapshot,
} from "../../src/snapshot/mod.ts";

function stored(sequence: number): StoredSnapshot {
  const nuid = `nuid-${sequence}`;
  return {
    info: {
      database: "a.db",
      sequence,
      size: 10,
      created: "2026-01-01T00:00:00Z",
      node: "n",
      digest: "SHA-256=x",
    },
    revision: sequence,
    chunks: 1,
    nuid,
    meta: {
      name: "a.db",
      bucket: "b",
      nuid,
      size: 10,
      chunks: 1,
      digest: "SHA-256=x",
      mtime: "2026-01-01T00:00:00Z",
    },
  };
}

Deno.test("retryReplaced: redoes the attempt with the snapshot that replaced it", async () => {
  const lines: string[] = [];
  const log = createLogger("info", (l) => lines.push(l));
  const seen: number[] = [];
  const r = await retryReplaced(stored(10), log, (s) => {
    seen.push(s.info.sequence);
    if (s.info.sequence < 12) {
      throw new SnapshotReplacedError(s, stored(s.info.sequence + 1), 3);
    }
    return Promise.resolve("done");
  });
  assert.deepEqual(seen, [10, 11, 12]);
  assert.equal(r.result, "done");
  assert.equal(r.snapshot.info.sequence, 12);
  const logged = lines.map((l) => JSON.parse(l));
  assert.deepEqual(logged.map((l) => [l.level, l.sequence, l.newSequence, l.attempt]), [
    ["warn", 10, 11, 1],
    ["warn", 11, 12, 2],
  ]);
  assert.match(
    logged[0].error,
    /seq 10\) was replaced by a newer one \(seq 11\) while downloading, after 3 of 10 bytes/,
  );
});

Deno.test("retryReplaced: bounded; other failures and deletions are thrown at once", async () => {
  const log = createLogger("error", () => {});
  let calls = 0;
  await assert.rejects(
    retryReplaced(stored(1), log, (s) => {
      calls++;
      throw new SnapshotReplacedError(s, stored(s.info.sequence + 1));
    }),
    (e: unknown) => isReplaced(e) && e.details.sequence === REPLACED_ATTEMPTS,
  );
  assert.equal(calls, REPLACED_ATTEMPTS);

  calls = 0;
  await assert.rejects(
    retryReplaced(stored(1), log, () => {
      calls++;
      throw new HaError("unavailable", "digest mismatch");
    }),
    /digest mismatch/,
  );
  assert.equal(calls, 1);

  calls = 0;
  await assert.rejects(
    retryReplaced(stored(1), log, (s) => {
      calls++;
      throw new SnapshotReplacedError(s, null);
    }),
    (e: unknown) =>
      e instanceof SnapshotReplacedError && e.code === "unavailable" &&
      /seq 1\) was deleted while downloading/.test(e.message),
  );
  assert.equal(calls, 1);
});

Deno.test("stagedStream: the file and its directory are gone after the end or a cancel", async () => {
  for (const how of ["read", "cancel"]) {
    const dir = await Deno.makeTempDir({ prefix: "ha-staged-unit-" });
    const path = `${dir}/a.db`;
    const content = new Uint8Array(300_000).map((_, i) => i % 251);
    await Deno.writeFile(path, content);
    const stream = await stagedStream(path, dir);
    if (how === "read") {
      assert.deepEqual(new Uint8Array(await new Response(stream).arrayBuffer()), content);
    } else {
      const reader = stream.getReader();
      assert.equal((await reader.read()).done, false);
      await reader.cancel();
    }
    await assert.rejects(Deno.stat(dir), Deno.errors.NotFound, how);
  }
});
