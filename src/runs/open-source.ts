/**
 * Opening a domain's split from its config: the one place that maps config to source
 * classes, and turns source errors into INVALID_ARGUMENT naming the domain and file.
 * Opening is planned in two halves: the index-time jobs a split needs (decoding compressed
 * JSONL, Parquet and Arrow text, tokenizing), which run in worker threads, and the open
 * itself, which only reads their cached results. `prepareSource` runs the jobs without
 * blocking (CreateRun); `openSource` runs any that are missing, blocking, then opens.
 * It lives in runs/, beside the domain loader that is its one user, because it joins two
 * folders: src/sources (the source classes) and src/tokenize (the jobs, packed sources),
 * which itself builds on src/sources; inside sources/ it made the two folders import each
 * other.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { SourceConfig } from "../config/schema.js";
import { invalid } from "../errors.js";
import { jobMeta, makeJob, type PrepareJob } from "../tokenize/jobs.js";
import { PackedTokenSource } from "../tokenize/packed-source.js";
import { runJobs, runJobsBlocking, type JobProgress } from "../tokenize/prepare.js";
import type { TokenizeSpec } from "../tokenize/run-payload.js";
import {
  JsonlSource,
  SourceError,
  TextBlobSource,
  TokenSource,
  compressionOf,
  expandPaths,
  megatronPaths,
  readMegatronIndex,
  sniff,
  type Source,
  type TextFormat,
} from "../sources/index.js";

export interface OpenContext {
  /** Where index caches go (`<dataDir>/index`). */
  readonly cacheDir: string;
  /** Relative paths in configs resolve against this directory. */
  readonly baseDir: string;
  readonly seqLen: number;
  /** Set for text splits of a token run: tokenize and pack. */
  readonly tokenize?: TokenizeSpec | null | undefined;
}

interface Plan {
  readonly jobs: PrepareJob[];
  open(): Source;
}

function checkFile(file: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    throw new SourceError(`${file}: file not found`);
  }
  if (!st.isFile()) throw new SourceError(`${file}: not a regular file`);
  if (st.size === 0) throw new SourceError(`${file}: file is empty`);
}

function plan(cfg: SourceConfig, ctx: OpenContext): Plan {
  const resolve = (p: string): string => path.resolve(ctx.baseDir, p);
  const files = expandPaths(cfg.paths.map(resolve), cfg.format);
  if (cfg.format === "megatron") return planMegatron(cfg.mode, files, ctx);
  files.forEach(checkFile);
  if (cfg.format === "tokens") {
    const opts = {
      paths: files,
      dtype: cfg.dtype,
      mode: cfg.mode,
      seqLen: ctx.seqLen,
      eosToken: cfg.eosToken,
      indexPaths: cfg.indexPaths?.map(resolve),
      difficultyFile: cfg.difficultyFile ? resolve(cfg.difficultyFile) : undefined,
      cacheDir: ctx.cacheDir,
    };
    return { jobs: [], open: () => new TokenSource(opts) };
  }
  const format: TextFormat = cfg.format;
  const field = cfg.format === "jsonl" ? cfg.textField : cfg.textColumn;
  const hasDifficulty = cfg.format === "jsonl" && (cfg.difficultyField !== undefined || cfg.difficultyFile !== undefined);
  if (ctx.tokenize) {
    if (hasDifficulty) throw new SourceError(`${files[0]}: difficulty is per document, but tokenized text is served as packed windows; drop difficultyField/difficultyFile or use a text run`);
    const t = ctx.tokenize;
    const jobs = files.map((file) => makeJob({ file, format, field }, "tokens", ctx.cacheDir, t.tokenizer, t.dtype));
    return {
      jobs,
      open: () => new PackedTokenSource(jobs.map((j) => ({ path: `${j.out}.tok`, ...done(j) })), t.dtype, ctx.seqLen),
    };
  }
  if (cfg.format === "jsonl") {
    const compressed = files.filter((f) => compressionOf(f) !== null);
    if (compressed.length === 0) {
      for (const f of files) {
        const kind = sniff(f);
        if (kind) throw new SourceError(`${f}: not JSONL, this is ${kind}`);
      }
      const opts = {
        paths: files,
        textField: cfg.textField,
        difficultyField: cfg.difficultyField,
        difficultyFile: cfg.difficultyFile ? resolve(cfg.difficultyFile) : undefined,
        cacheDir: ctx.cacheDir,
      };
      return { jobs: [], open: () => new JsonlSource(opts) };
    }
    if (hasDifficulty) throw new SourceError(`${compressed[0]}: difficulty fields are not supported on compressed JSONL; decompress the file`);
  }
  const jobs = files.map((file) => makeJob({ file, format, field }, "text", ctx.cacheDir));
  return {
    jobs,
    open: () => {
      jobs.forEach(done);
      return new TextBlobSource(jobs.map((j) => j.out));
    },
  };
}

function done(j: PrepareJob): { tokens: number; textBytes: number } {
  const m = jobMeta(j);
  if (!m) throw new SourceError(`${j.file}: index entry ${j.out} is missing (was it deleted while opening?)`);
  return { tokens: m.tokens, textBytes: m.textBytes };
}

function planMegatron(mode: "windows" | "documents", entries: readonly string[], ctx: OpenContext): Plan {
  const pairs = [...new Set(entries.map((e) => megatronPaths(e).bin))].map((b) => megatronPaths(b));
  for (const p of pairs) checkFile(p.bin);
  return {
    jobs: [],
    open: () => {
      const indexes = pairs.map((p) => readMegatronIndex(p.idx, fs.statSync(p.bin).size));
      const dtypes = new Set(indexes.map((x) => x.dtype));
      if (dtypes.size > 1) throw new SourceError(`${pairs[0]!.idx}: the Megatron files of this split mix dtypes (${[...dtypes].join(", ")})`);
      return new TokenSource({
        paths: pairs.map((p) => p.bin),
        dtype: indexes[0]!.dtype,
        mode,
        seqLen: ctx.seqLen,
        indexPaths: mode === "documents" ? pairs.map((p) => p.idx) : undefined,
        cacheDir: ctx.cacheDir,
      });
    },
  };
}

function wrap<T>(where: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof SourceError) throw invalid(`${where}: ${e.message}`);
    throw e;
  }
}

export function openSource(cfg: SourceConfig, ctx: OpenContext, where: string): Source {
  return wrap(where, () => {
    const p = plan(cfg, ctx);
    runJobsBlocking(p.jobs);
    return p.open();
  });
}

/** Run a split's index-time jobs in worker threads (no-op when cached). */
export async function prepareSource(cfg: SourceConfig, ctx: OpenContext, where: string, onProgress?: (p: JobProgress) => void): Promise<void> {
  const p = wrap(where, () => plan(cfg, ctx));
  try {
    await runJobs(p.jobs, onProgress);
  } catch (e) {
    if (e instanceof SourceError) throw invalid(`${where}: ${e.message}`);
    throw e;
  }
}
