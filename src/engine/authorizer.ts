/**
 * SQLite authorizer action codes (sqlite3.h) and a typed `setAuthorizer`:
 * node:sqlite has both at runtime, but Deno's bundled Node types lag behind.
 */
import type { DatabaseSync } from "node:sqlite";

/** Authorizer action codes used by the engine and by change capture. */
export const Action = {
  CREATE_INDEX: 1,
  CREATE_TABLE: 2,
  CREATE_TEMP_INDEX: 3,
  CREATE_TEMP_TABLE: 4,
  CREATE_TEMP_TRIGGER: 5,
  CREATE_TEMP_VIEW: 6,
  CREATE_TRIGGER: 7,
  CREATE_VIEW: 8,
  DELETE: 9,
  DROP_INDEX: 10,
  DROP_TABLE: 11,
  DROP_TEMP_INDEX: 12,
  DROP_TEMP_TABLE: 13,
  DROP_TEMP_TRIGGER: 14,
  DROP_TEMP_VIEW: 15,
  DROP_TRIGGER: 16,
  DROP_VIEW: 17,
  INSERT: 18,
  PRAGMA: 19,
  READ: 20,
  SELECT: 21,
  TRANSACTION: 22,
  UPDATE: 23,
  ATTACH: 24,
  DETACH: 25,
  ALTER_TABLE: 26,
  REINDEX: 27,
  ANALYZE: 28,
  CREATE_VTABLE: 29,
  DROP_VTABLE: 30,
  FUNCTION: 31,
  SAVEPOINT: 32,
  RECURSIVE: 33,
} as const;

/** `SQLITE_OK` for an authorizer callback. */
export const AUTH_OK = 0;

type AuthorizerFn = (
  code: number,
  arg1: string | null,
  arg2: string | null,
  db: string | null,
  trigger: string | null,
) => number;

/** Installs (or with `null` removes) the connection's authorizer. */
export function setAuthorizer(db: DatabaseSync, fn: AuthorizerFn | null): void {
  (db as unknown as { setAuthorizer(fn: AuthorizerFn | null): void }).setAuthorizer(fn);
}
