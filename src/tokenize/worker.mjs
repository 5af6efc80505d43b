// Worker-thread entry: workers start without the parent's TypeScript loader, so register
// tsx here (as bin/mixflow.mjs does), then run the TypeScript body. A failure to load is
// reported to a blocked caller too (it cannot see the worker's error event while waiting).
import { workerData } from "node:worker_threads";
import { register } from "tsx/esm/api";

register();
try {
  await import("./worker-main.ts");
} catch (e) {
  if (workerData?.shared) {
    const flags = new Int32Array(workerData.shared, 0, 2);
    const msg = new TextEncoder().encode(`indexing worker failed to start: ${e?.message ?? e}`).subarray(0, 4096);
    new Uint8Array(workerData.shared, 8).set(msg);
    flags[1] = msg.length;
    Atomics.store(flags, 0, 3);
    Atomics.notify(flags, 0);
  }
  throw e;
}
