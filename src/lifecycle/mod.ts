/**
 * How a node's parts start and stop: {@link Parts} (in order, in reverse), {@link together}
 * (front ends stopped at once) and {@link Late} (a value that exists once NATS is reached).
 *
 * @example
 * ```ts
 * const parts = new Parts(logger);
 * try {
 *   await parts.start("nats server", server);
 *   await parts.start("front ends", together([http, pg]));
 * } catch (e) {
 *   await parts.stop();
 *   throw e;
 * }
 * await parts.stop(); // front ends, then the NATS server
 * ```
 *
 * @module
 */
export { type Part, Parts, together } from "./parts.ts";
export { releaseStartGarbage } from "./release.ts";
export { Late } from "./late.ts";
