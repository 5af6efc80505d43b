/**
 * Index-time jobs: turning one text file into a cached artifact under `<dataDir>/index/`.
 *  - "text": the file's documents as one UTF-8 blob plus float64 offsets (random access to
 *    compressed JSONL, Parquet and Arrow text without re-decoding them per batch);
 *  - "tokens": the documents tokenized, each followed by the EOS id, as raw LE uint16/uint32.
 * The cache name hashes everything the output depends on (file path and fingerprint, reader,
 * tokenizer fingerprint, dtype), so a changed file or tokenizer gets a new entry and a stale
 * one is never read. The meta file is written last: its presence means the entry is whole.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { fingerprint, type TextFileSpec } from "../sources/index.js";
import { tokenizerFingerprint, type TokenizerRef } from "./tokenizer.js";

export interface PrepareJob extends TextFileSpec {
  readonly kind: "text" | "tokens";
  readonly tokenizer?: TokenizerRef | undefined;
  readonly dtype?: "uint16" | "uint32" | undefined;
  /** Output path without extension (`.docs`/`.off` or `.tok`, and `.json`). */
  readonly out: string;
}

export interface JobMeta {
  docs: number;
  /** Text bytes read (UTF-8). */
  textBytes: number;
  /** Tokens written, EOS included (tokens jobs). */
  tokens: number;
  eos: number | null;
  vocabSize: number | null;
}

const VERSION = 1;

export function makeJob(spec: TextFileSpec, kind: "text" | "tokens", cacheDir: string, tokenizer?: TokenizerRef, dtype?: "uint16" | "uint32"): PrepareJob {
  const key = createHash("sha1")
    .update(
      JSON.stringify({
        v: VERSION,
        kind,
        file: path.resolve(spec.file),
        fp: fingerprint(spec.file),
        format: spec.format,
        field: spec.field,
        tok: tokenizer ? tokenizerFingerprint(tokenizer) : null,
        dtype: dtype ?? null,
      }),
    )
    .digest("hex")
    .slice(0, 32);
  return { ...spec, kind, tokenizer, dtype, out: path.join(cacheDir, `${kind}-${key}`) };
}

/** The meta of a finished job, or null if it has not run (or was interrupted). */
export function jobMeta(job: PrepareJob): JobMeta | null {
  try {
    return JSON.parse(fs.readFileSync(`${job.out}.json`, "utf8")) as JobMeta;
  } catch {
    return null;
  }
}
