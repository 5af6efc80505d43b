/**
 * Reading segments: listing them, scanning records with checksum verification, and telling
 * a torn tail (crash mid-write, safe to cut off) from corruption (never skipped silently).
 */
import { open as openFile, readdir, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import {
  FRAME_HEADER_BYTES,
  HEADER_BYTES,
  MAX_RECORD_BYTES,
  decodeHeader,
  frameCrc,
  parseSegmentName,
  segmentName,
  type SegmentHeader,
} from "./format.js";

/** One record read back from the journal. */
export interface StoredRecord {
  /** Caller-defined record type, 0..255. */
  type: number;
  /**
   * The payload. It may be a view into a larger read buffer: copy it (`Buffer.from(p)`) if you
   * keep a few payloads for a long time and drop the rest, so the big buffer can be freed.
   */
  payload: Buffer;
  /** Segment file name, e.g. `journal-000003.seg`. */
  segment: string;
  /** Byte offset of the record's frame inside the segment file. */
  offset: number;
  /** True for the records of a checkpoint snapshot (the first records of a checkpoint segment). */
  snapshot: boolean;
}

/** A problem found while scanning. */
export interface ScanProblem {
  /**
   * `torn-tail`: the end of the newest segment holds an incomplete or garbled frame with no
   * valid frame after it: what a crash in the middle of a write leaves. `corrupt`: anything
   * else (bad header, a bad frame followed by valid data, a bad frame in an older segment).
   */
  kind: "torn-tail" | "corrupt";
  segment: string;
  offset: number;
  reason: string;
  /**
   * Offset of the next valid frame after a bad one in the middle of a segment (the frame
   * CRC covers the length, so a frame that checks out there is a resynchronisation point):
   * repair drops just the bytes [offset, resumeAt). Absent for torn tails and bad headers.
   */
  resumeAt?: number;
}

export interface SegmentScanResult {
  name: string;
  number: number;
  header: SegmentHeader | null;
  /** File size in bytes. */
  size: number;
  /** Offset just past the last valid record (HEADER_BYTES for an empty segment; 0 if the header is bad). */
  validEnd: number;
  records: number;
  problem: ScanProblem | null;
}

export interface SegmentListing {
  /** Segment numbers in increasing order. */
  numbers: number[];
  /** Leftover `*.tmp` files from an interrupted rotation or checkpoint. */
  tmp: string[];
}

export async function listSegments(dir: string): Promise<SegmentListing> {
  const names = await readdir(dir);
  const numbers: number[] = [];
  const tmp: string[] = [];
  for (const n of names) {
    const num = parseSegmentName(n);
    if (num !== null) numbers.push(num);
    else if (n.endsWith(".seg.tmp") && n.startsWith("journal-")) tmp.push(n);
  }
  numbers.sort((a, b) => a - b);
  return { numbers, tmp };
}

const CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Sequential buffered reader. Buffers are never reused, because records handed out are views
 * into them.
 */
class ChunkReader {
  private buf: Buffer = Buffer.alloc(0);
  /** File offset of buf[0]. */
  private base = 0;
  /** Valid bytes in buf. */
  private len = 0;
  constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}

  get buffer(): Buffer {
    return this.buf;
  }
  /** Index into `buffer` of file offset `off` (off must be inside what `ensure` returned). */
  index(off: number): number {
    return off - this.base;
  }

  /**
   * Make at least `n` bytes from file offset `off` available in `buffer`, or as many as the
   * file has. Returns how many bytes are available from `off`.
   */
  async ensure(off: number, n: number): Promise<number> {
    const have = this.base + this.len - off;
    if (have >= n) return have;
    const want = Math.min(n, this.size - off);
    if (have >= want) return have;
    // New buffer holding the remainder of the old one plus at least a chunk more.
    const keep = Math.max(0, have);
    const cap = Math.min(Math.max(want, CHUNK_BYTES), this.size - off);
    const next = Buffer.allocUnsafe(cap);
    if (keep > 0) this.buf.copy(next, 0, off - this.base, off - this.base + keep);
    let filled = keep;
    while (filled < cap) {
      const { bytesRead } = await this.fh.read(next, filled, cap - filled, off + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    this.buf = next;
    this.base = off;
    this.len = filled;
    return filled;
  }
}

/**
 * Scan one segment, calling `onRecord` for each valid record in order. Stops at the first
 * problem. `isLast` says whether this is the newest segment (the only place a torn tail can
 * be); a problem there is classified by looking for any valid frame after it.
 */
export async function scanSegment(
  dir: string,
  num: number,
  isLast: boolean,
  onRecord: ((r: StoredRecord) => void) | null,
): Promise<SegmentScanResult> {
  const name = segmentName(num);
  const fh = await openFile(join(dir, name), "r");
  try {
    const size = (await fh.stat()).size;
    const res: SegmentScanResult = { name, number: num, header: null, size, validEnd: 0, records: 0, problem: null };
    const hb = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(hb, 0, HEADER_BYTES, 0);
    const header = decodeHeader(hb.subarray(0, bytesRead), num);
    if (typeof header === "string") {
      res.problem = { kind: "corrupt", segment: name, offset: 0, reason: header };
      return res;
    }
    res.header = header;
    res.validEnd = HEADER_BYTES;
    const r = new ChunkReader(fh, size);
    let off = HEADER_BYTES;
    let count = 0;
    const snapN = header.checkpoint ? header.snapshotRecords : 0;
    let reason: string | null = null;
    let declaredLen = -1;
    outer: while (off < size) {
      let avail = await r.ensure(off, CHUNK_BYTES);
      if (avail === 0) break; // file shrank under us; treat as end of file
      // Synchronous inner loop over what is buffered; refill only when a frame straddles.
      for (;;) {
        if (avail === 0) continue outer;
        if (avail < FRAME_HEADER_BYTES) {
          if (off + avail >= size) {
            reason = `incomplete frame header (${avail} of ${FRAME_HEADER_BYTES} bytes before end of file)`;
            break outer;
          }
          continue outer;
        }
        const buf = r.buffer;
        const i = r.index(off);
        const len = buf.readUInt32LE(i);
        if (len > MAX_RECORD_BYTES) {
          reason = `record length ${len} exceeds the ${MAX_RECORD_BYTES}-byte maximum`;
          break outer;
        }
        const total = FRAME_HEADER_BYTES + len;
        if (avail < total) {
          if (off + avail >= size) {
            reason = `record of ${len} payload bytes runs past end of file (${avail - FRAME_HEADER_BYTES} bytes present)`;
            declaredLen = len;
            break outer;
          }
          avail = await r.ensure(off, total);
          continue;
        }
        const stored = buf.readUInt32LE(i + 5);
        if (frameCrc(buf, i, i + FRAME_HEADER_BYTES, len) !== stored) {
          reason = "record checksum mismatch";
          declaredLen = len;
          break outer;
        }
        if (onRecord) {
          onRecord({
            type: buf[i + 4]!,
            payload: buf.subarray(i + FRAME_HEADER_BYTES, i + total),
            segment: name,
            offset: off,
            snapshot: count < snapN,
          });
        }
        count++;
        off += total;
        avail -= total;
      }
    }
    res.records = count;
    res.validEnd = off;
    if (reason === null && count < snapN) {
      reason = `checkpoint header promises ${snapN} snapshot records but the segment holds ${count}`;
      res.problem = { kind: "corrupt", segment: name, offset: off, reason };
      return res;
    }
    if (reason !== null) {
      let kind: ScanProblem["kind"] = "corrupt";
      let next: number | null = null;
      if (!isLast) {
        reason += "; this is not the newest segment, so it cannot be a torn write";
        if (count >= snapN) next = await findValidFrameAfter(fh, off, size, declaredLen);
      } else if (count < snapN) {
        reason += "; the damage is inside the checkpoint snapshot, which is written before the segment becomes visible, so it cannot be a torn write";
      } else {
        next = await findValidFrameAfter(fh, off, size, declaredLen);
        if (next === null) kind = "torn-tail";
        else reason += `; a valid record follows at offset ${next}, so this is not a torn write`;
      }
      res.problem = { kind, segment: name, offset: off, reason, ...(next !== null && count >= snapN ? { resumeAt: next } : {}) };
    }
    return res;
  } finally {
    await fh.close();
  }
}

/**
 * Is there any valid frame starting after `off`? Torn writes leave garbage only at the very
 * end; if a checksummed frame follows, the bad frame at `off` is damage in the middle.
 * Tries the declared next frame position first (the common case of a flipped payload bit),
 * then every byte offset. Bounded by the segment size, linear in practice because most
 * candidate offsets are rejected by the length check or a 5-byte CRC.
 */
async function findValidFrameAfter(fh: FileHandle, off: number, size: number, declaredLen: number): Promise<number | null> {
  const n = size - off;
  const buf = Buffer.allocUnsafe(n);
  let filled = 0;
  while (filled < n) {
    const { bytesRead } = await fh.read(buf, filled, n - filled, off + filled);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  const valid = (p: number): boolean => {
    if (p + FRAME_HEADER_BYTES > filled) return false;
    const len = buf.readUInt32LE(p);
    if (len > MAX_RECORD_BYTES || p + FRAME_HEADER_BYTES + len > filled) return false;
    return frameCrc(buf, p, p + FRAME_HEADER_BYTES, len) === buf.readUInt32LE(p + 5);
  };
  if (declaredLen >= 0) {
    const p = FRAME_HEADER_BYTES + declaredLen;
    if (p < filled && valid(p)) return off + p;
  }
  for (let p = 1; p + FRAME_HEADER_BYTES <= filled; p++) {
    if (valid(p)) return off + p;
  }
  return null;
}

/** Read just a segment's header. */
export async function readSegmentHeader(dir: string, num: number): Promise<SegmentHeader | string> {
  const fh = await openFile(join(dir, segmentName(num)), "r");
  try {
    const hb = Buffer.alloc(HEADER_BYTES);
    const { bytesRead } = await fh.read(hb, 0, HEADER_BYTES, 0);
    return decodeHeader(hb.subarray(0, bytesRead), num);
  } finally {
    await fh.close();
  }
}
