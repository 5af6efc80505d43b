/**
 * Worker-thread body for index-time jobs. Two ways to be driven (prepare.ts):
 *  - async: jobs arrive by message, progress and results go back by message;
 *  - blocking: one job in workerData with a SharedArrayBuffer the caller waits on
 *    (Atomics.wait), used when a source must open synchronously (journal recovery).
 */
import { parentPort, workerData } from "node:worker_threads";
import type { PrepareJob } from "./jobs.js";
import { runJob } from "./run-job.js";

interface BlockingData {
  job: PrepareJob;
  /** Int32 [status (0 running, 1 ok, 2 failed), message length] then UTF-8 message bytes. */
  shared: SharedArrayBuffer;
}

function errorText(e: unknown): { message: string; source: boolean } {
  const err = e as Error;
  return { message: err?.message ?? String(e), source: err?.name === "SourceError" };
}

const data = workerData as BlockingData | null;
if (data?.shared) {
  const flags = new Int32Array(data.shared, 0, 2);
  const bytes = new Uint8Array(data.shared, 8);
  const finish = (status: number, message: string): void => {
    const enc = Buffer.from(message, "utf8").subarray(0, bytes.length);
    bytes.set(enc);
    flags[1] = enc.length;
    Atomics.store(flags, 0, status);
    Atomics.notify(flags, 0);
  };
  runJob(data.job, () => {}).then(
    () => finish(1, ""),
    (e: unknown) => {
      const t = errorText(e);
      finish(t.source ? 2 : 3, t.message);
    },
  );
} else {
  parentPort!.on("message", (msg: { id: number; job: PrepareJob }) => {
    let last = 0;
    runJob(msg.job, (done, total) => {
      const now = Date.now();
      if (now - last < 250) return;
      last = now;
      parentPort!.postMessage({ id: msg.id, type: "progress", done, total });
    }).then(
      (meta) => parentPort!.postMessage({ id: msg.id, type: "done", meta }),
      (e: unknown) => parentPort!.postMessage({ id: msg.id, type: "error", ...errorText(e) }),
    );
  });
}
