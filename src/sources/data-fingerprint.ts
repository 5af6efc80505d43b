/**
 * Content fingerprints of a run's data (DESIGN.md "Data identity"): a run's batches are a
 * function of its data, so each split's files are fingerprinted when the run is created
 * (journaled with the creation record) and checked again at recovery and by `replay
 * verify`. A changed file refuses the run with the file named, instead of silently
 * serving different samples under already-served step numbers.
 *
 * A file's fingerprint is its size and a SHA-256 over its bytes: the whole file up to
 * FULL_HASH_BYTES, beyond that BLOCKS evenly spaced blocks of BLOCK_BYTES (first and last
 * included), so a multi-GB file costs ~1 MiB of reads. Generic over formats: it sees only
 * the files a split's config names (after path/glob/directory expansion), plus its
 * index and difficulty files. The sampled hash cannot see a same-size edit that touches
 * no sampled block of a large file (documented in docs/security.md).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import type { RunConfig, SourceConfig } from "../config/schema.js";
import { MixflowError, invalid } from "../errors.js";
import { expandPaths } from "./expand-paths.js";
import { megatronPaths } from "./megatron.js";
import type { FileFingerprint, SplitFingerprint } from "../history/events.js";

/** The record shapes live with the journal schema (src/history/events.ts). */
export type { FileFingerprint, SplitFingerprint } from "../history/events.js";

const FULL_HASH_BYTES = 1 << 20;
const BLOCKS = 64;
const BLOCK_BYTES = 16 << 10;


/** Fingerprint one file (size + hash of all bytes, or of sampled blocks past 1 MiB). */
export function fingerprintFile(file: string): FileFingerprint {
  const fd = fs.openSync(file, "r");
  try {
    const size = fs.fstatSync(fd).size;
    const h = createHash("sha256");
    h.update(`${size}\n`);
    if (size <= FULL_HASH_BYTES) {
      const buf = Buffer.alloc(size);
      fs.readSync(fd, buf, 0, size, 0);
      h.update(buf);
      return { path: file, size, hash: `sha256:${h.digest("hex")}` };
    }
    const buf = Buffer.alloc(BLOCK_BYTES);
    const span = size - BLOCK_BYTES;
    for (let b = 0; b < BLOCKS; b++) {
      const at = Math.floor((span * b) / (BLOCKS - 1));
      const n = fs.readSync(fd, buf, 0, BLOCK_BYTES, at);
      h.update(buf.subarray(0, n));
    }
    return { path: file, size, hash: `sha256-blocks${BLOCKS}x16k:${h.digest("hex")}` };
  } finally {
    fs.closeSync(fd);
  }
}

/** The files a split's config names, resolved against baseDir, in serving order. */
export function splitFiles(cfg: SourceConfig, baseDir: string): string[] {
  const resolve = (p: string): string => path.resolve(baseDir, p);
  const files = expandPaths(cfg.paths.map(resolve), cfg.format);
  if (cfg.format === "megatron") {
    return [...new Set(files.map((f) => megatronPaths(f).bin))].flatMap((b) => [b, megatronPaths(b).idx]);
  }
  const extra: string[] = [];
  if (cfg.format === "tokens" && cfg.indexPaths) extra.push(...cfg.indexPaths.map(resolve));
  if ((cfg.format === "tokens" || cfg.format === "jsonl") && cfg.difficultyFile) extra.push(resolve(cfg.difficultyFile));
  return [...files, ...extra];
}

/**
 * Fingerprint every split of a run's domains (what the creation record journals). Reads up
 * to ~1 MiB per file: CreateRun runs it in a worker thread (src/workers, `fingerprintData`).
 * A file that cannot be read is INVALID_ARGUMENT naming it (the error code, no contents).
 */
export function runDataFingerprint(cfg: RunConfig, baseDir: string): SplitFingerprint[] {
  const out: SplitFingerprint[] = [];
  try {
    for (const d of cfg.domains) {
      out.push({ domain: d.name, split: "train", files: splitFiles(d.train, baseDir).map(fingerprintFile) });
      if (d.eval) out.push({ domain: d.name, split: "eval", files: splitFiles(d.eval, baseDir).map(fingerprintFile) });
    }
  } catch (e) {
    if (e instanceof MixflowError) throw e;
    throw invalid(`run "${cfg.id}": cannot fingerprint its data files: ${(e as NodeJS.ErrnoException).code ?? "read error"} on ${(e as NodeJS.ErrnoException).path ?? "a data file"}`);
  }
  return out;
}

/**
 * Compare recorded fingerprints with the files now on disk. Returns one line per
 * difference, each naming the domain, split and file (never file contents); empty when
 * the data is unchanged. The function `replay verify` and recovery share.
 */
export function checkDataFingerprint(recorded: readonly SplitFingerprint[]): string[] {
  const problems: string[] = [];
  for (const s of recorded) {
    for (const f of s.files) {
      const where = `domain "${s.domain}" ${s.split} file ${f.path}`;
      let now: FileFingerprint;
      try {
        now = fingerprintFile(f.path);
      } catch (e) {
        problems.push(`${where}: cannot be read (${(e as NodeJS.ErrnoException).code ?? "error"})`);
        continue;
      }
      if (now.size !== f.size) problems.push(`${where}: size changed from ${f.size} to ${now.size} bytes`);
      else if (now.hash !== f.hash) problems.push(`${where}: content changed (same size, ${f.size} bytes)`);
    }
  }
  return problems;
}

/** The message that refuses a run whose data changed: what changed, and the two ways out. */
export function dataChangedMessage(runId: string, problems: readonly string[]): string {
  return (
    `run "${runId}": its data changed since the run was created, so its batches would differ from the ones already served: ` +
    `${problems.join("; ")}. Restore the file(s) as they were to resume this run, or start a new run (a new id) on the changed data`
  );
}
