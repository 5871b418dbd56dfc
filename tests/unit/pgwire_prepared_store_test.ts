import assert from "node:assert/strict";
import { type Portal, PreparedStore } from "../../src/pgwire/prepared.ts";

function portalOf(store: PreparedStore, params: bigint[]): Portal {
  return { stmt: store.statement(""), params, resultFormats: [], cursor: 0 };
}

Deno.test("prepared store: the unnamed portal is replaced, closed, forgotten and cleared", () => {
  const store = new PreparedStore();
  store.prepare("", "SELECT $1", []);
  const missing = (name: string) =>
    assert.throws(() => store.portal(name), (e: Error & { code?: string }) => e.code === "34000");
  missing("");
  const a = portalOf(store, [1n]);
  store.checkNewPortal(""); // the unnamed portal may always be bound again
  store.setPortal("", a);
  assert.equal(store.portal(""), a);
  const b = portalOf(store, [2n]);
  store.checkNewPortal("");
  store.setPortal("", b);
  assert.equal(store.portal(""), b);
  store.close("P", "");
  missing("");

  // Named portals live beside it: a simple Query forgets only the unnamed one, a transaction's
  // end all of them.
  const named = portalOf(store, [3n]);
  store.setPortal("c1", named);
  assert.throws(
    () => store.checkNewPortal("c1"),
    (e: Error & { code?: string }) => e.code === "42P03",
  );
  store.setPortal("", a);
  store.forgetUnnamed();
  missing("");
  assert.equal(store.portal("c1"), named);
  store.setPortal("", a);
  store.clearPortals();
  missing("");
  missing("c1");
  store.setPortal("", a);
  store.reset();
  missing("");
});
