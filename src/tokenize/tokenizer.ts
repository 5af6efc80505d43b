/**
 * Tokenizers a run or domain can name: a Hugging Face `tokenizer.json` (run by
 * @huggingface/tokenizers, the pure-JS port the HF team maintains, so ids match the Rust
 * `tokenizers` package) or a tiktoken encoding (js-tiktoken, OpenAI's BPE ranks in JS).
 * Loading happens where text is tokenized (index-time worker threads); the fingerprint is
 * what index caches are keyed by, so a changed tokenizer file is never served stale.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { SourceError } from "../sources/index.js";

/** A resolved tokenizer spec: an absolute tokenizer.json path or a tiktoken encoding name. */
export interface TokenizerRef {
  readonly kind: "hf" | "tiktoken";
  /** Absolute path (hf) or encoding name (tiktoken). */
  readonly name: string;
  /** End-of-document token override: a token string or id. */
  readonly eos?: string | number | undefined;
}

export interface LoadedTokenizer {
  readonly ref: TokenizerRef;
  /** Hash of what determines the ids (file content or encoding + package version). */
  readonly fingerprint: string;
  /** Largest id + 1 (decides uint16 vs uint32). */
  readonly vocabSize: number;
  readonly eos: number;
  encode(text: string): number[];
}

export const TIKTOKEN_ENCODINGS = ["gpt2", "r50k_base", "p50k_base", "p50k_edit", "cl100k_base", "o200k_base"] as const;

/** Cheap fingerprint without loading the tokenizer (cache keys on the main thread). */
export function tokenizerFingerprint(ref: TokenizerRef): string {
  const h = createHash("sha256").update(ref.kind).update("\0").update(String(ref.eos ?? "")).update("\0");
  if (ref.kind === "hf") {
    let buf: Buffer;
    try {
      buf = fs.readFileSync(ref.name);
    } catch {
      throw new SourceError(`${ref.name}: tokenizer file not found or unreadable`);
    }
    h.update(buf);
  } else {
    h.update(ref.name).update("\0js-tiktoken-1");
  }
  return h.digest("hex").slice(0, 32);
}

const EOS_CANDIDATES = ["<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eos|>", "[SEP]"];

export async function loadTokenizer(ref: TokenizerRef): Promise<LoadedTokenizer> {
  const fingerprint = tokenizerFingerprint(ref);
  if (ref.kind === "tiktoken") {
    const { getEncoding } = await import("js-tiktoken");
    if (!(TIKTOKEN_ENCODINGS as readonly string[]).includes(ref.name)) {
      throw new SourceError(`tokenizer "tiktoken:${ref.name}": unknown tiktoken encoding; known: ${TIKTOKEN_ENCODINGS.join(", ")}`);
    }
    const enc = getEncoding(ref.name as (typeof TIKTOKEN_ENCODINGS)[number]);
    const eos = resolveEos(ref, (t) => {
      try {
        const ids = enc.encode(t, "all");
        return ids.length === 1 ? ids[0] : undefined;
      } catch {
        return undefined;
      }
    });
    const vocabSize = ref.name === "o200k_base" ? 200_019 : ref.name === "cl100k_base" ? 100_277 : 50_281;
    return { ref, fingerprint, vocabSize, eos, encode: (text) => enc.encode(text, [], []) };
  }
  let json: unknown;
  try {
    json = JSON.parse(fs.readFileSync(ref.name, "utf8"));
  } catch (e) {
    throw new SourceError(`${ref.name}: not a readable tokenizer.json (${(e as Error).message.split("\n")[0]})`);
  }
  const { Tokenizer } = await import("@huggingface/tokenizers");
  let tok: InstanceType<typeof Tokenizer>;
  try {
    tok = new Tokenizer(json as object, {});
  } catch (e) {
    throw new SourceError(`${ref.name}: the tokenizer could not be loaded (${(e as Error).message.split("\n")[0]})`);
  }
  let vocabSize = 0;
  for (const id of tok.get_vocab(true).values()) vocabSize = Math.max(vocabSize, id + 1);
  const eos = resolveEos(ref, (t) => tok.token_to_id(t));
  return { ref, fingerprint, vocabSize, eos, encode: (text) => tok.encode(text, { add_special_tokens: false }).ids };
}

function resolveEos(ref: TokenizerRef, idOf: (t: string) => number | undefined): number {
  const where = ref.kind === "hf" ? ref.name : `tiktoken:${ref.name}`;
  if (typeof ref.eos === "number") return ref.eos;
  if (typeof ref.eos === "string") {
    const id = idOf(ref.eos);
    if (id === undefined) throw new SourceError(`${where}: eos token "${ref.eos}" is not in the tokenizer's vocabulary`);
    return id;
  }
  for (const c of EOS_CANDIDATES) {
    const id = idOf(c);
    if (id !== undefined) return id;
  }
  throw new SourceError(`${where}: no end-of-document token found (tried ${EOS_CANDIDATES.join(", ")}); set tokenizer.eos to its token or id`);
}
