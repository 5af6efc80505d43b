/**
 * Running index-time jobs in worker threads. `runJobs` is the normal path (CreateRun awaits
 * it, the event loop stays free, progress is reported as files are read); `runJobsBlocking`
 * is for synchronous opens (recovery of a run whose cache was removed): the thread waits on
 * a SharedArrayBuffer while a worker does the work, so the result is the same bytes.
 */
import * as os from "node:os";
import { Worker } from "node:worker_threads";
import { internal, type MixflowError } from "../errors.js";
import { SourceError } from "../sources/index.js";
import { jobMeta, type PrepareJob } from "./jobs.js";

/**
 * From TypeScript sources (a checkout, tests) workers start at worker.mjs, which registers
 * tsx; from the compiled package (dist/, no tsx loader needed) at the compiled body.
 */
const ENTRY = import.meta.url.endsWith(".ts") ? new URL("./worker.mjs", import.meta.url) : new URL("./worker-main.js", import.meta.url);

export interface JobProgress {
  file: string;
  /** Files finished / all files needing work. */
  filesDone: number;
  filesTotal: number;
  /** Progress within the current file (bytes or rows). */
  done: number;
  total: number;
}

/**
 * A job's failure as the worker reported it: a source error (bad data, INVALID_ARGUMENT,
 * naming the file) or anything else, which is a bug or the machine (INTERNAL).
 */
function fail(message: string, source: boolean): MixflowError {
  return source ? new SourceError(message) : internal(`indexing worker failed: ${message}`);
}

/** Run the jobs whose output is missing, on up to `threads` workers. */
export async function runJobs(jobs: readonly PrepareJob[], onProgress?: (p: JobProgress) => void, threads = defaultThreads()): Promise<void> {
  const todo = dedupe(jobs).filter((j) => jobMeta(j) === null);
  if (todo.length === 0) return;
  let next = 0;
  let finished = 0;
  const n = Math.max(1, Math.min(threads, todo.length));
  const workers = Array.from({ length: n }, () => new Worker(ENTRY));
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const take = (): void => {
              if (next >= todo.length) return resolve();
              const id = next++;
              w.postMessage({ id, job: todo[id] });
            };
            w.on("message", (m: { id: number; type: string; done?: number; total?: number; message?: string; source?: boolean }) => {
              if (m.type === "progress") {
                onProgress?.({ file: todo[m.id]!.file, filesDone: finished, filesTotal: todo.length, done: m.done!, total: m.total! });
              } else if (m.type === "done") {
                finished++;
                onProgress?.({ file: todo[m.id]!.file, filesDone: finished, filesTotal: todo.length, done: 1, total: 1 });
                take();
              } else {
                next = todo.length; // stop handing out work
                reject(fail(m.message!, m.source === true));
              }
            });
            w.on("error", reject);
            take();
          }),
      ),
    );
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/** Run the missing jobs one by one, blocking this thread until each is done. */
export function runJobsBlocking(jobs: readonly PrepareJob[]): void {
  for (const job of dedupe(jobs)) {
    if (jobMeta(job) !== null) continue;
    const shared = new SharedArrayBuffer(8 + 4096);
    const flags = new Int32Array(shared, 0, 2);
    const w = new Worker(ENTRY, { workerData: { job, shared } });
    let exitError: Error | null = null;
    w.on("error", (e) => (exitError = e));
    // Wait in slices so a worker that dies before reporting cannot hang us forever.
    for (let waited = 0; Atomics.load(flags, 0) === 0; waited++) {
      Atomics.wait(flags, 0, 0, 1000);
      if (waited > 24 * 3600) throw internal(`${job.file}: indexing worker did not finish within 24 hours`);
    }
    const status = Atomics.load(flags, 0);
    void w.terminate();
    if (status !== 1) {
      const msg = Buffer.from(new Uint8Array(shared, 8, flags[1]!)).toString("utf8");
      throw fail(msg || String(exitError), status === 2);
    }
  }
}

function dedupe(jobs: readonly PrepareJob[]): PrepareJob[] {
  const seen = new Set<string>();
  return jobs.filter((j) => (seen.has(j.out) ? false : (seen.add(j.out), true)));
}

function defaultThreads(): number {
  return Math.max(1, Math.min(4, os.availableParallelism() - 1));
}
