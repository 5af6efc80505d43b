/**
 * What a run's batches carry. Every batch of a run has one payload kind: text runs serve
 * documents, token runs serve seqLen + 1 windows. A run is a token run when it names a
 * tokenizer (itself or on a domain) or has a token domain; its text domains are then
 * tokenized at index time (the domain's tokenizer, else the run's, else tiktoken gpt2,
 * the encoding nanoGPT-style uint16 .bin files are written with).
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { RunConfig, SourceConfig, TokenizerConfig } from "../config/schema.js";
import { invalid } from "../errors.js";
import { expandPaths, megatronDtype, megatronPaths, SourceError } from "../sources/index.js";
import type { TokenizerRef } from "./tokenizer.js";

export interface TokenizeSpec {
  readonly tokenizer: TokenizerRef;
  readonly dtype: "uint16" | "uint32";
}

export const DEFAULT_TOKENIZER = "tiktoken:gpt2";
const TIKTOKEN_VOCAB: Record<string, number> = { o200k_base: 200_019, cl100k_base: 100_277 };

export function isTextFormat(f: SourceConfig["format"]): boolean {
  return f === "jsonl" || f === "parquet" || f === "arrow";
}

export function resolveTokenizer(t: TokenizerConfig, baseDir: string): TokenizerRef {
  const spec = typeof t === "string" ? (t.startsWith("tiktoken:") ? { tiktoken: t.slice(9) } : { path: t }) : t;
  const eos = typeof t === "string" ? undefined : t.eos;
  if (spec.tiktoken !== undefined) return { kind: "tiktoken", name: spec.tiktoken, eos };
  return { kind: "hf", name: path.resolve(baseDir, spec.path!), eos };
}

/** Text domains of a token run that fall back to the default tokenizer (worth a warning). */
export function defaultTokenizerDomains(cfg: RunConfig): string[] {
  const tokenRun = cfg.tokenizer !== undefined || cfg.domains.some((d) => d.tokenizer !== undefined || !isTextFormat(d.train.format));
  if (!tokenRun || cfg.tokenizer !== undefined) return [];
  return cfg.domains.filter((d) => isTextFormat(d.train.format) && d.tokenizer === undefined).map((d) => d.name);
}

/** Per domain: how its text is tokenized, or null (text run, or a token domain). */
export function tokenizeSpecs(cfg: RunConfig, baseDir: string): (TokenizeSpec | null)[] {
  const tokenRun = cfg.tokenizer !== undefined || cfg.domains.some((d) => d.tokenizer !== undefined || !isTextFormat(d.train.format));
  if (!tokenRun) return cfg.domains.map(() => null);
  const refs = cfg.domains.map((d) => (isTextFormat(d.train.format) ? resolveTokenizer(d.tokenizer ?? cfg.tokenizer ?? DEFAULT_TOKENIZER, baseDir) : null));
  let dtype: "uint16" | "uint32" | null = null;
  cfg.domains.forEach((d, i) => {
    const t = d.train;
    let dt: "uint16" | "uint32" | null = null;
    try {
      if (t.format === "tokens") dt = t.dtype;
      else if (t.format === "megatron") dt = megatronDtype(megatronPaths(expandPaths([path.resolve(baseDir, t.paths[0]!)], "megatron")[0]!).idx);
    } catch (e) {
      if (e instanceof SourceError) throw invalid(`domains[${i}] ("${d.name}").train: ${e.message}`);
      throw e;
    }
    dtype ??= dt;
  });
  if (dtype === null) {
    const maxVocab = Math.max(...refs.map((r, i) => (r ? vocabSize(r, i, cfg) : 0)));
    dtype = maxVocab <= 65536 ? "uint16" : "uint32";
  }
  const d = dtype;
  return refs.map((r) => (r ? { tokenizer: r, dtype: d } : null));
}

function vocabSize(ref: TokenizerRef, i: number, cfg: RunConfig): number {
  if (ref.kind === "tiktoken") return TIKTOKEN_VOCAB[ref.name] ?? 50_281;
  let json: { model?: { vocab?: Record<string, number> | unknown[] }; added_tokens?: { id: number }[] };
  try {
    json = JSON.parse(fs.readFileSync(ref.name, "utf8")) as typeof json;
  } catch (e) {
    throw invalid(`domains[${i}] ("${cfg.domains[i]!.name}").tokenizer: ${ref.name}: not a readable tokenizer.json`);
  }
  const v = json.model?.vocab;
  let n = Array.isArray(v) ? v.length : v ? Math.max(0, ...Object.values(v).map((x) => Number(x) + 1)) : 0;
  for (const a of json.added_tokens ?? []) n = Math.max(n, a.id + 1);
  return n;
}
