/**
 * What serving produces: a rank's slice of a step as domain values — which domain and
 * sample each slot holds, counts per domain, the payload ready to be copied — with no wire
 * format in it. The server maps it to a `Batch` message (src/server/batch-message.ts);
 * metrics count from it directly.
 */

/**
 * Payload bytes written straight into the encoded message: the batch encoder allocates the
 * final wire buffer once and asks each payload to fill its part, so a token window travels
 * source → wire buffer with a single copy.
 */
export interface LazyBytes {
  readonly length: number;
  write(dst: Buffer, offset: number): void;
}

/** A slice's samples, concatenated. */
export interface ServedPayload {
  readonly kind: "text" | "tokens";
  /** Token width (null for text). */
  readonly dtype: "uint16" | "uint32" | null;
  /** Tokens: [slots, windowTokens] for fixed windows, [total tokens] for documents; text: []. */
  readonly shape: readonly number[];
  readonly data: LazyBytes;
  /** Where each slot starts, in items (bytes for text), uint64 LE, slots + 1 entries; empty for fixed windows. */
  readonly offsets: Buffer;
}

/** The samples of a slice and their payload (a batch's slice, or an eval probe window). */
export interface ServedSlice {
  /** Domain per slot. */
  readonly domains: Uint32Array;
  /** Sample index (in its domain's split) per slot. */
  readonly samples: Float64Array;
  /** Slots per domain. */
  readonly perDomain: Uint32Array;
  /** Payload bytes per domain. */
  readonly bytesPerDomain: Float64Array;
  readonly payload: ServedPayload;
}

/** Held-out probe windows of one domain, sent with an eval request. */
export interface EvalProbe {
  readonly domain: number;
  readonly slice: ServedSlice;
}

/** A rank's batch of a step. */
export interface ServedBatch {
  readonly runId: string;
  readonly step: number;
  readonly rank: number;
  readonly worldSize: number;
  /** The weights version the step was planned with. */
  readonly version: number;
  /** First global slot of the slice, and its slot count. */
  readonly offset: number;
  readonly slots: number;
  readonly slice: ServedSlice;
  /** The global batch's 64-bit digest, 16 hex digits. */
  readonly digest: string;
  /** Probes when this batch carries an eval request, else null. */
  readonly eval: readonly EvalProbe[] | null;
}
