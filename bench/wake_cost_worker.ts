/** Echo worker of `wake_cost.ts`. @module */
(self as unknown as Worker).onmessage = (e: MessageEvent) =>
  (self as unknown as Worker).postMessage(e.data);
