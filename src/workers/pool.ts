/**
 * Run a task of ./tasks.ts in a worker thread, so that heavy, synchronous work (reading
 * and indexing files, clustering, compression, carving) never blocks the event loop that
 * serves every other run. One thread per call: the tasks are long (seconds), the start
 * (~0.1-0.5 s) is small beside them, and a thread that ends frees all it allocated.
 */
import { Worker } from "node:worker_threads";
import { MixflowError, type ErrorCode } from "../errors.js";
import type { WorkerMessage } from "./main.js";
import { sourceWarning } from "../sources/index.js";
import type { TaskInput, TaskName, TaskProgress, TaskResult } from "./tasks.js";

/** The worker entry next to this module (a bundle of ./main.ts in bundled builds). */
// tsc's compiled output (dist/, an npm-packed install) has the worker loop as main.js beside
// this file; sources (tsx) and bundles use the mixflow-worker.mjs entry.
const ENTRY = import.meta.url.endsWith("/workers/pool.js") ? new URL("./main.js", import.meta.url) : new URL("./mixflow-worker.mjs", import.meta.url);

export function runInWorker<K extends TaskName>(task: K, input: TaskInput<K>, onProgress: (p: TaskProgress<K>) => void = () => undefined): Promise<TaskResult<K>> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(ENTRY, { workerData: { task, input } });
    let settled = false;
    const settle = (f: () => void): void => {
      if (settled) return;
      settled = true;
      f();
    };
    worker.on("message", (m: WorkerMessage) => {
      if (m.type === "progress") onProgress(m.progress as TaskProgress<K>);
      else if (m.type === "warning") sourceWarning(m.msg, m.fields);
      else if (m.type === "result") settle(() => resolve(m.value as TaskResult<K>));
      else {
        const err = m.code ? new MixflowError(m.code as ErrorCode, m.message) : new MixflowError("INTERNAL", `worker task ${task} failed: ${m.message}`);
        if (!m.code) err.stack = m.stack;
        settle(() => reject(err));
      }
    });
    worker.on("error", (e) => settle(() => reject(new MixflowError("INTERNAL", `worker task ${task} crashed: ${e.message}`))));
    worker.on("exit", (code) => settle(() => reject(new MixflowError("INTERNAL", `worker task ${task} exited (code ${code}) without a result`))));
  });
}
