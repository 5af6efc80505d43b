/**
 * The work mixflow moves off the serving thread, by name. Each task takes a structured-
 * cloneable input and a progress callback and returns a structured-cloneable result; it
 * runs in a worker thread (./pool.ts `runInWorker`), so it may block as long as it needs.
 *
 * Add a task here (e.g. tokenizing a source) and call it with `runInWorker("name", input)`.
 */
import type { RunConfig } from "../config/schema.js";
import { deriveDomains, type DomainLoadContext, type PreparedDomain, type PrepareProgress } from "../runs/domains.js";
import { runDataFingerprint, type SplitFingerprint } from "../sources/index.js";

export const TASKS = {
  /** Indexing, statistics, holdout carving, the overlap check and difficulty order of a run's domains. */
  deriveDomains: (input: { cfg: RunConfig; lctx: DomainLoadContext }, progress: (p: PrepareProgress) => void): PreparedDomain[] =>
    deriveDomains(input.cfg, input.lctx, progress),
  /** Content fingerprints of a run's data files (SHA-256 of up to ~1 MiB per file). */
  fingerprintData: (input: { cfg: RunConfig; baseDir: string }, _progress: (p: never) => void): SplitFingerprint[] => runDataFingerprint(input.cfg, input.baseDir),
} satisfies Record<string, (input: never, progress: never) => unknown>;

export type Tasks = typeof TASKS;
export type TaskName = keyof Tasks;
export type TaskInput<K extends TaskName> = Parameters<Tasks[K]>[0];
export type TaskProgress<K extends TaskName> = Parameters<Parameters<Tasks[K]>[1]>[0];
export type TaskResult<K extends TaskName> = ReturnType<Tasks[K]>;
