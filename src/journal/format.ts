/**
 * On-disk format of journal segments, and the journal's error types.
 *
 * Segment file `journal-NNNNNN.seg` (number zero-padded to at least 6 digits, increasing):
 *
 *   header, 24 bytes:
 *     0  magic            8 bytes  "MXFLJRNL"
 *     8  version          u16 LE   1
 *    10  flags            u16 LE   bit 0: the segment starts with a checkpoint snapshot
 *    12  segment number   u32 LE   must equal the number in the file name
 *    16  snapshot records u32 LE   how many leading records are the snapshot (0 if no flag)
 *    20  header CRC32C    u32 LE   over bytes [0, 20)
 *
 *   then records, back to back, each framed as:
 *     0  length  u32 LE   payload length in bytes, at most MAX_RECORD_BYTES
 *     4  type    u8       caller-defined record type
 *     5  crc     u32 LE   CRC32C over bytes [0, 5) of the frame (length + type) followed by
 *                         the payload, i.e. everything in the frame except the crc itself
 *     9  payload length bytes
 *
 * Why the length is covered by the CRC: a flipped bit in the length field would otherwise
 * shift the frame boundary and could only be caught indirectly. Why a length cap: so that a
 * corrupted length can never make recovery allocate gigabytes. Why a header CRC and the
 * segment number inside it: a header is written once, so a bad one is always corruption, and
 * a file copied or renamed into the wrong place is detected instead of replayed out of order.
 *
 * A new segment (rotation or checkpoint) is written completely (header, and snapshot for a
 * checkpoint) to `<name>.tmp`, fsynced, then renamed into place and the directory fsynced.
 * So a file with a segment name always has a complete header (and complete snapshot); only
 * the record area at the end of the newest segment can be torn by a crash.
 */

import { MixflowError } from "../errors.js";
import { crc32c, crc32cUpdate } from "./crc32c.js";

export const MAGIC = Buffer.from("MXFLJRNL", "latin1");
export const FORMAT_VERSION = 1;
export const HEADER_BYTES = 24;
export const FRAME_HEADER_BYTES = 9;
/** Largest payload accepted by `append` and by recovery (64 MiB). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
export const FLAG_CHECKPOINT = 1;

const SEGMENT_RE = /^journal-(\d{6,})\.seg$/;

/** File name of segment number `n`. */
export function segmentName(n: number): string {
  return `journal-${String(n).padStart(6, "0")}.seg`;
}

/** Segment number encoded in a file name, or null if the name is not a segment. */
export function parseSegmentName(name: string): number | null {
  const m = SEGMENT_RE.exec(name);
  if (!m) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) && n > 0 && n <= 0xffffffff ? n : null;
}

export interface SegmentHeader {
  version: number;
  checkpoint: boolean;
  segmentNumber: number;
  snapshotRecords: number;
}

export function encodeHeader(h: Omit<SegmentHeader, "version">): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(b, 0);
  b.writeUInt16LE(FORMAT_VERSION, 8);
  b.writeUInt16LE(h.checkpoint ? FLAG_CHECKPOINT : 0, 10);
  b.writeUInt32LE(h.segmentNumber, 12);
  b.writeUInt32LE(h.snapshotRecords, 16);
  b.writeUInt32LE(crc32c(b, 0, 20), 20);
  return b;
}

/** Decode a header, or return the reason it is invalid. */
export function decodeHeader(b: Uint8Array, expectedNumber: number): SegmentHeader | string {
  if (b.length < HEADER_BYTES) return `segment header is ${b.length} bytes, expected ${HEADER_BYTES}`;
  const buf = Buffer.from(b.buffer, b.byteOffset, HEADER_BYTES);
  if (!buf.subarray(0, 8).equals(MAGIC)) return "bad segment magic (not a mixflow journal segment)";
  const crc = buf.readUInt32LE(20);
  if (crc32c(buf, 0, 20) !== crc) return "segment header checksum mismatch";
  const version = buf.readUInt16LE(8);
  if (version !== FORMAT_VERSION) return `unsupported segment format version ${version} (this build reads ${FORMAT_VERSION})`;
  const flags = buf.readUInt16LE(10);
  const segmentNumber = buf.readUInt32LE(12);
  if (segmentNumber !== expectedNumber) {
    return `segment header says number ${segmentNumber} but the file name says ${expectedNumber}`;
  }
  return {
    version,
    checkpoint: (flags & FLAG_CHECKPOINT) !== 0,
    segmentNumber,
    snapshotRecords: buf.readUInt32LE(16),
  };
}

/** Bytes a record with this payload length occupies on disk. */
export function frameBytes(payloadLength: number): number {
  return FRAME_HEADER_BYTES + payloadLength;
}

/**
 * Encode one frame into `dst` at `off`; returns the offset after it. The caller has checked
 * `type` and the payload size.
 */
export function encodeFrame(dst: Buffer, off: number, type: number, payload: Uint8Array): number {
  const len = payload.length;
  dst.writeUInt32LE(len, off);
  dst[off + 4] = type;
  dst.set(payload, off + FRAME_HEADER_BYTES);
  dst.writeUInt32LE(frameCrc(dst, off, off + FRAME_HEADER_BYTES, len), off + 5);
  return off + FRAME_HEADER_BYTES + len;
}

/** CRC of a frame: length+type bytes at `hdr`, then `len` payload bytes at `payload`. */
export function frameCrc(buf: Uint8Array, hdr: number, payload: number, len: number): number {
  return crc32cUpdate(crc32cUpdate(0, buf, hdr, hdr + 5), buf, payload, payload + len);
}

/** Validate an append's arguments; throws a TypeError/RangeError a caller can act on. */
export function checkRecord(type: unknown, payload: unknown): void {
  if (typeof type !== "number" || !Number.isInteger(type) || type < 0 || type > 255) {
    throw new RangeError(`journal record type must be an integer in [0, 255], got ${String(type)}`);
  }
  if (!(payload instanceof Uint8Array)) {
    throw new TypeError("journal record payload must be a Uint8Array or Buffer");
  }
  if (payload.length > MAX_RECORD_BYTES) {
    throw new RangeError(
      `journal record payload is ${payload.length} bytes, larger than the ${MAX_RECORD_BYTES}-byte limit`,
    );
  }
}

/**
 * Corruption that recovery cannot safely skip: a bad record that is not a torn tail, a bad
 * header, or a missing segment. The message names the segment file and byte offset so an
 * operator can inspect it (`mixflow journal check`) and decide to `repair`.
 */
export class JournalCorruptError extends MixflowError {
  readonly segment: string;
  readonly offset: number;
  readonly reason: string;
  constructor(segment: string, offset: number, reason: string) {
    super("DATA_LOSS", `journal corrupt in ${segment} at byte offset ${offset}: ${reason} (run \`mixflow journal check\`, then \`mixflow journal repair\` to truncate there, keeping a backup)`);
    this.name = "JournalCorruptError";
    this.segment = segment;
    this.offset = offset;
    this.reason = reason;
  }
}

/** The journal was closed, or failed earlier (write or fsync error) and refuses further work. */
export class JournalClosedError extends MixflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("UNAVAILABLE", message, options);
    this.name = "JournalClosedError";
  }
}

/** Another live process (or another Journal in this process) has the directory open. */
export class JournalLockedError extends MixflowError {
  constructor(message: string) {
    super("FAILED_PRECONDITION", message);
    this.name = "JournalLockedError";
  }
}
