/**
 * Compressibility of a domain: deflate-compressed bytes / raw bytes over a deterministic
 * sample of its documents. Random noise is near-incompressible (random bytes ≈ 1, random
 * base64 ≈ 0.75), ordinary text ≈ 0.3–0.5, boilerplate and near-duplicates are small.
 * The default strategy uses it as a prior (`DomainInfo.compressRatio`).
 *
 * Pure: the same texts give the same ratio. The sample is bounded (`maxBytes`, ~1 MB) so
 * indexing a huge domain costs the same as a small one.
 */
import { deflateRawSync } from "node:zlib";

/** Options of {@link compressRatio}. */
export interface CompressOptions {
  /** Stop adding documents once this many raw bytes are collected (default 1 MiB). */
  readonly maxBytes?: number;
}

/**
 * Pick documents at evenly spaced indices (stride over the whole list, so the sample
 * covers the domain rather than its first files) until `maxBytes` is reached.
 */
function sampleTexts(texts: readonly string[], maxBytes: number): Buffer {
  const parts: Buffer[] = [];
  let total = 0;
  if (texts.length === 0) return Buffer.alloc(0);
  // Average size guess from a few docs decides the stride; at least 1.
  const probe = Math.min(texts.length, 64);
  let probeBytes = 0;
  for (let i = 0; i < probe; i++) probeBytes += Buffer.byteLength(texts[Math.floor((i * texts.length) / probe)]!, "utf8");
  const avg = Math.max(1, probeBytes / probe);
  const wanted = Math.max(1, Math.ceil(maxBytes / avg));
  const stride = Math.max(1, Math.floor(texts.length / wanted));
  for (let i = 0; i < texts.length && total < maxBytes; i += stride) {
    const b = Buffer.from(texts[i]!, "utf8");
    const take = b.length > maxBytes - total ? b.subarray(0, maxBytes - total) : b;
    parts.push(take);
    total += take.length;
  }
  return Buffer.concat(parts, total);
}

/**
 * deflateRaw(sample).length / sample.length, in (0, ~1.01]; 0 for an empty domain
 * (meaning "unknown" to strategies).
 */
export function compressRatio(texts: readonly string[], opts: CompressOptions = {}): number {
  const raw = sampleTexts(texts, Math.max(1, opts.maxBytes ?? 1 << 20));
  if (raw.length === 0) return 0;
  return deflateRawSync(raw, { level: 6 }).length / raw.length;
}

/** The same measure over raw bytes (token shards, binary payloads), first `maxBytes`. */
export function compressRatioBytes(bytes: Uint8Array, opts: CompressOptions = {}): number {
  const n = Math.min(bytes.length, Math.max(1, opts.maxBytes ?? 1 << 20));
  if (n === 0) return 0;
  return deflateRawSync(bytes.subarray(0, n), { level: 6 }).length / n;
}
