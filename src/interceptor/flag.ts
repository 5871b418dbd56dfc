/**
 * The first argument that makes the compiled `ha` binary run as an interceptor sandbox process
 * (`child.ts`). Apart so that `main.ts` can check for it without loading the sandbox's modules.
 *
 * @module
 */

/** First argument that makes the compiled `ha` binary run as a sandbox process. */
export const SANDBOX_FLAG = "--ha-interceptor-sandbox";
