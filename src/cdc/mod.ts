/**
 * Change data capture: the replication wire format ({@link ChangeSet}), exact value encoding,
 * the hybrid logical clock and DDL idempotency helpers. Never publishes anything.
 *
 * @example
 * ```ts
 * import { encodeValue, Hlc } from "./src/cdc/mod.ts";
 * encodeValue(1.0); // { real: "1.0" }
 * new Hlc().next();
 * ```
 * @module
 */
export { type CdcValue, decodeValue, encodeValue, wireKey, type WireValue } from "./values.ts";
export { compareVersion, Hlc } from "./hlc.ts";
export {
  type Change,
  type ChangeSet,
  decodeChangeSet,
  encodeChangeSet,
  type Operation,
} from "./changeset.ts";
export { alreadyApplied, ddlRefusal, idempotentDdl, stripLeadingComments } from "./ddl.ts";
