/**
 * Inside a worker thread: run the one task named in workerData, post its progress and then
 * its result or its error (code and message, so a MixflowError keeps its gRPC status).
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import { MixflowError, internal } from "../errors.js";
import { TASKS } from "./tasks.js";
import { setSourceWarningSink } from "../sources/index.js";

export type WorkerMessage =
  | { type: "progress"; progress: unknown }
  | { type: "warning"; msg: string; fields: Record<string, unknown> }
  | { type: "result"; value: unknown }
  | { type: "error"; code: string | null; message: string; stack: string };

/**
 * Background work yields the CPU to serving: on Linux this thread lowers its own nice value
 * (setpriority on its thread id affects this thread only), so on a busy machine the event
 * loop that serves batches is scheduled first. Elsewhere it runs at normal priority.
 */
function lowerThisThreadsPriority(): void {
  let tid: number;
  try {
    tid = Number(path.basename(fs.readlinkSync("/proc/thread-self")));
  } catch {
    return; // no /proc/thread-self: not Linux; the thread keeps the normal priority
  }
  os.setPriority(tid, Math.min(19, os.getPriority(tid) + 10));
}
lowerThisThreadsPriority();

const { task, input } = workerData as { task: keyof typeof TASKS; input: never };
const post = (m: WorkerMessage): void => parentPort!.postMessage(m);
// Data-layer warnings (damaged caches rebuilt) go to the serving thread's log.
setSourceWarningSink((msg, fields) => post({ type: "warning", msg, fields }));
try {
  const fn = TASKS[task] as unknown as ((i: unknown, p: (x: unknown) => void) => unknown) | undefined;
  if (!fn) throw internal(`no worker task "${String(task)}"`);
  post({ type: "result", value: fn(input, (progress) => post({ type: "progress", progress })) });
} catch (e) {
  // No code for anything but a MixflowError: the pool names the task and keeps the stack.
  const message = e instanceof Error ? e.message : String(e);
  post({ type: "error", code: e instanceof MixflowError ? e.code : null, message, stack: e instanceof Error ? (e.stack ?? "") : "" });
}
