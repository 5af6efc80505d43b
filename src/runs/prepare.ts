/**
 * Loading a new run's domains without stalling the server: the heavy part (indexing,
 * near-duplicate clustering, compressibility, holdout carving, the overlap check, the
 * difficulty sort) runs in a worker thread; the serving thread then only opens the splits
 * (their indexes cached by the worker) one domain per turn of the event loop, after reading
 * the files they hold in memory asynchronously, so other runs' batches and reports are
 * served in between.
 */
import { setImmediate as turn } from "node:timers/promises";
import type { RunConfig } from "../config/schema.js";
import { runInWorker } from "../workers/pool.js";
import { dropPreloaded, preloadWholeFiles } from "../sources/index.js";
import type { JobProgress } from "../tokenize/prepare.js";
import { checkSamePayload, closeLoaded, openPrepared, prepareDomains, type DomainLoadContext, type LoadedDomain, type PrepareProgress } from "./domains.js";

/**
 * `onFile`: progress of the tokenizing step (src/tokenize, its own worker threads), which
 * runs first so that the derive step's worker finds the tokenized caches.
 */
export async function loadDomainsOffThread(
  cfg: RunConfig,
  lctx: DomainLoadContext,
  onProgress: (p: PrepareProgress) => void = () => undefined,
  onFile: (domain: string, p: JobProgress) => void = () => undefined,
): Promise<LoadedDomain[]> {
  await prepareDomains(cfg, lctx, onFile);
  const prepared = await runInWorker("deriveDomains", { cfg, lctx }, onProgress);
  const out: LoadedDomain[] = [];
  try {
    for (let i = 0; i < prepared.length; i++) {
      await turn();
      // The files the sources read whole, read off the event loop first (src/sources/file-bytes.ts).
      await preloadWholeFiles(prepared[i]!.wholeFiles);
      out.push(openPrepared(cfg, i, lctx, prepared[i]!));
    }
  } catch (e) {
    for (const d of out) closeLoaded(d);
    throw e;
  } finally {
    for (const p of prepared) dropPreloaded(p.wholeFiles);
  }
  checkSamePayload(out);
  return out;
}
