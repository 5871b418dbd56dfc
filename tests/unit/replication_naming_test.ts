/** Names of the stream's subjects and consumers. */
import assert from "node:assert/strict";
import { consumerOf, normaliseName, subjectOf } from "../../src/replication/mod.ts";

Deno.test("subjects and consumers are normalised", () => {
  assert.equal(subjectOf("ha_replication", "my db.db"), "ha_replication.my_db_db");
  assert.equal(consumerOf("ha.db", "node1"), "ha_db_node1");
  assert.equal(normaliseName("a/b*c>d e.f"), "a_b_c_d_e_f");
  const long = "x".repeat(40);
  assert.notEqual(consumerOf(`${long}a.db`, "n"), consumerOf(`${long}b.db`, "n"));
});
