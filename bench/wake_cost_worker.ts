/**
 * Echo worker of `wake_cost.ts`. The first message picks how it is woken: `post` (each request a
 * message, answered with the same value, or with the received buffer moved back), or, for the
 * shared-memory variants, `{ sab, wait: "sync" | "async", reply: "post" | "sab" }`: requests are
 * v8-serialized into `sab` (a doorbell at index 0, the length at 1, bytes from 8) and the worker
 * blocks in `Atomics.wait` (its event loop stopped) or awaits `Atomics.waitAsync`.
 * @module
 */
import { deserialize, serialize } from "node:v8";

type Mode = "post" | { sab: SharedArrayBuffer; wait: "sync" | "async"; reply: "post" | "sab" };
const self_ = self as unknown as Worker;

self_.onmessage = (first: MessageEvent<Mode>) => {
  const mode = first.data;
  if (mode === "post") {
    self_.onmessage = (e: MessageEvent) => {
      if (e.data instanceof ArrayBuffer) self_.postMessage(e.data, [e.data]);
      else self_.postMessage(e.data);
    };
    return;
  }
  self_.onmessage = null;
  const ctl = new Int32Array(mode.sab, 0, 4), bytes = new Uint8Array(mode.sab, 16);
  let seen = 0;
  const answer = () => {
    seen = Atomics.load(ctl, 0);
    if (ctl[1] < 0) return self.close(); // told to end
    const req = deserialize(bytes.subarray(0, ctl[1])) as { id: number };
    if (mode.reply === "post") return self_.postMessage(req);
    const out = serialize(req);
    bytes.set(out);
    ctl[3] = out.length;
    Atomics.store(ctl, 2, seen);
    Atomics.notify(ctl, 2);
  };
  if (mode.wait === "sync") {
    while (ctl[1] >= 0) {
      // Atomics.wait may return without a notify: answer only a new request.
      while (Atomics.load(ctl, 0) === seen) Atomics.wait(ctl, 0, seen);
      answer();
    }
    return;
  }
  const loop = async () => {
    while (ctl[1] >= 0) {
      while (Atomics.load(ctl, 0) === seen) {
        const r = Atomics.waitAsync(ctl, 0, seen);
        if (r.async) await r.value;
      }
      answer();
    }
  };
  loop();
};
