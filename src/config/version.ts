/**
 * The program version, printed by `ha --version`.
 *
 * @example
 * ```ts
 * import { VERSION } from "./version.ts";
 * console.info(`ha ${VERSION}`);
 * ```
 * @module
 */

/** The version of ha (semver). */
export const VERSION = "0.1.0";
