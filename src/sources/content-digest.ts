/**
 * Content digests of served batches (issue 12): the batch digest covers (domain, sample
 * index) only, so it cannot see a data file whose bytes changed. Each served slice's
 * payload is therefore hashed as it is written to the wire, per domain, and the sums are
 * journaled with the step's Aggregated record; `mixflow replay verify --data` re-reads the
 * data, re-assembles the same slices and names the step and the domain that differ.
 *
 * Why this shape:
 * - One pass over bytes that the encoder has just written (in cache), ~3 GB/s on token
 *   windows (32-bit words through an aligned scratch), so the hot path stays fast.
 * - A slot's word hash is a chain of bijections, and a domain's digest is a sum mod 2^32 of
 *   per-slot mixes of (slot hash, global slot): a single changed byte in one served sample
 *   always changes its domain's digest (not just with high probability), and slices of a
 *   step combine by addition whatever the world size or the order ranks were served in.
 * - Train payloads only (eval probes are fixed per run and not journaled per step).
 */
import { fmix32, type GlobalBatch } from "../sampling/index.js";
import type { LazyBytes, ServedPayload } from "../runs/served.js";
import type { StepContent } from "../history/events.js";

const CHUNK = 64 << 10;
const scratch = new ArrayBuffer(CHUNK);
const S8 = new Uint8Array(scratch);
const S32 = new Int32Array(scratch);

/** Hash of bytes [start, end) of `src`: four 32-bit word lanes, a byte tail, the length. */
export function hashBytes(src: Uint8Array, start: number, end: number): number {
  let h0 = 0x9e3779b1 | 0;
  let h1 = 0x85ebca77 | 0;
  let h2 = 0xc2b2ae3d | 0;
  let h3 = 0x27d4eb2f | 0;
  let pos = start;
  // Whole 16-byte groups through the aligned scratch (chunks are multiples of 16, so the
  // state after a chunk is the state a single pass would have).
  while (end - pos >= 16) {
    const n = Math.min(end - pos, CHUNK) & ~15;
    S8.set(src.subarray(pos, pos + n));
    const words = n >>> 2;
    for (let w = 0; w < words; w += 4) {
      h0 = Math.imul(h0 + S32[w]!, 0x9e3779b1);
      h0 ^= h0 >>> 15;
      h1 = Math.imul(h1 + S32[w + 1]!, 0x85ebca77);
      h1 ^= h1 >>> 15;
      h2 = Math.imul(h2 + S32[w + 2]!, 0xc2b2ae3d);
      h2 ^= h2 >>> 15;
      h3 = Math.imul(h3 + S32[w + 3]!, 0x27d4eb2f);
      h3 ^= h3 >>> 15;
    }
    pos += n;
  }
  let t = 0x165667b1;
  for (; pos < end; pos++) t = Math.imul(t ^ src[pos]!, 0x01000193);
  let h = h0 ^ ((h1 << 7) | (h1 >>> 25)) ^ ((h2 << 12) | (h2 >>> 20)) ^ ((h3 << 18) | (h3 >>> 14));
  h = Math.imul(h ^ t, 0x2c1b3c6d) + (end - start);
  return fmix32(h);
}

/** A slot's contribution to its domain's digest (a bijection of the slot hash for a given slot). */
function slotTerm(hash: number, globalSlot: number): number {
  return fmix32((hash ^ Math.imul(globalSlot + 1, 0x9e3779b1)) >>> 0);
}

/**
 * Add the per-domain digests of a slice's payload, written at `bytes[at…]`, into `sums`.
 * Slot boundaries: the payload's offsets (uint64 LE, in tokens or bytes) or, for token
 * windows (no offsets), equal rows.
 */
export function addSliceDigest(
  sums: Uint32Array,
  g: GlobalBatch,
  offset: number,
  slots: number,
  payload: ServedPayload,
  bytes: Uint8Array,
  at: number,
): void {
  const unit = payload.kind === "tokens" ? (payload.dtype === "uint32" ? 4 : 2) : 1;
  const offs = payload.offsets;
  const row = offs.length === 0 ? payload.data.length / slots : 0;
  for (let i = 0; i < slots; i++) {
    let s: number;
    let e: number;
    if (offs.length === 0) {
      s = at + i * row;
      e = s + row;
    } else {
      s = at + (offs.readUInt32LE(i * 8) + offs.readUInt32LE(i * 8 + 4) * 4294967296) * unit;
      e = at + (offs.readUInt32LE(i * 8 + 8) + offs.readUInt32LE(i * 8 + 12) * 4294967296) * unit;
    }
    const d = g.domains[offset + i]!;
    sums[d] = (sums[d]! + slotTerm(hashBytes(bytes, s, e), offset + i)) >>> 0;
  }
}

/** The per-domain digests of one slice (offline: verify assembles the payload into a buffer first). */
export function sliceDigest(g: GlobalBatch, offset: number, slots: number, payload: ServedPayload, domains: number): Uint32Array {
  const buf = Buffer.allocUnsafe(payload.data.length);
  payload.data.write(buf, 0);
  const sums = new Uint32Array(domains);
  addSliceDigest(sums, g, offset, slots, payload, buf, 0);
  return sums;
}

/**
 * Steps whose served content is remembered until they are aggregated: bounded memory (at
 * most 1024 × 4 bytes × domains per run, 4 MiB at the 1,024-domain limit). A step reported
 * more than this many served steps later is journaled without content digests (verify
 * --data then skips it); reports come a few steps behind serving (pacing holds streams
 * within `prefetch`).
 */
const STEPS_KEPT = 1024;

/**
 * The content digests of steps served but not aggregated yet, per run. `wrap` hooks a
 * slice's payload so that its digest is added when the encoder writes it; `take` hands
 * a step's digests to its Aggregated record. A slice served twice (a retry) counts once.
 */
export class ContentLedger {
  private readonly steps = new Map<number, { ranges: Map<number, number>; sums: Uint32Array }>();

  constructor(private readonly domainCount: number) {}

  /** The payload with a `write` that also digests the bytes it wrote. */
  wrap(g: GlobalBatch, step: number, offset: number, slots: number, payload: ServedPayload): LazyBytes {
    const inner = payload.data;
    return {
      length: inner.length,
      write: (dst, at) => {
        inner.write(dst, at);
        this.note(g, step, offset, slots, payload, dst, at);
      },
    };
  }

  private note(g: GlobalBatch, step: number, offset: number, slots: number, payload: ServedPayload, dst: Uint8Array, at: number): void {
    let e = this.steps.get(step);
    if (!e) {
      if (this.steps.size >= STEPS_KEPT) this.steps.delete(this.steps.keys().next().value!);
      e = { ranges: new Map(), sums: new Uint32Array(this.domainCount) };
      this.steps.set(step, e);
    }
    for (const [o, n] of e.ranges) if (offset < o + n && o < offset + slots) return;
    e.ranges.set(offset, slots);
    addSliceDigest(e.sums, g, offset, slots, payload, dst, at);
  }

  /** The step's digests for its Aggregated record (and forget them), or undefined if none was served here. */
  take(step: number): StepContent | undefined {
    const e = this.steps.get(step);
    if (!e) return undefined;
    this.steps.delete(step);
    const ranges = [...e.ranges].sort((a, b) => a[0] - b[0]).flat();
    return { ranges, domains: Array.from(e.sums) };
  }
}
