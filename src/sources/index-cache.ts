/**
 * On-disk cache of source indexes (line offsets, document boundaries, difficulty), built
 * once and stored under `<dataDir>/index/`. Each entry is keyed by the file's absolute
 * path and the index options, and carries a fingerprint of the file (size, mtime, hashes
 * of its first and last 64 KiB): a changed file is re-indexed, never silently misread.
 *
 * Format: "MXIDX1\n" | u32 LE header length | header JSON (padded to 8 bytes) |
 * float64 LE arrays in header order.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

const MAGIC = Buffer.from("MXIDX1\n");
const EDGE = 64 * 1024;

export interface Fingerprint {
  size: number;
  mtimeMs: number;
  head: string;
  tail: string;
}

export interface CachedIndex {
  meta: Record<string, unknown>;
  arrays: Record<string, Float64Array>;
}

/** Fingerprint a file cheaply: size, mtime and hashes of its head and tail. */
export function fingerprint(file: string): Fingerprint {
  const st = fs.statSync(file);
  const fd = fs.openSync(file, "r");
  try {
    const head = Buffer.alloc(Math.min(EDGE, st.size));
    fs.readSync(fd, head, 0, head.length, 0);
    const tail = Buffer.alloc(Math.min(EDGE, st.size));
    fs.readSync(fd, tail, 0, tail.length, Math.max(0, st.size - tail.length));
    return {
      size: st.size,
      mtimeMs: st.mtimeMs,
      head: createHash("sha1").update(head).digest("hex"),
      tail: createHash("sha1").update(tail).digest("hex"),
    };
  } finally {
    fs.closeSync(fd);
  }
}

function entryPath(cacheDir: string, file: string, key: string): string {
  const h = createHash("sha1").update(path.resolve(file)).update("\0").update(key).digest("hex");
  return path.join(cacheDir, `${h.slice(0, 24)}.idx`);
}

function sameFingerprint(a: Fingerprint, b: Fingerprint): boolean {
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.head === b.head && a.tail === b.tail;
}

/** Load a cached index if present and its fingerprint matches the file now. */
export function loadIndex(cacheDir: string, file: string, key: string, fp: Fingerprint): CachedIndex | null {
  const p = entryPath(cacheDir, file, key);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(p);
  } catch {
    return null;
  }
  try {
    if (!buf.subarray(0, MAGIC.length).equals(MAGIC)) return null;
    const hlen = buf.readUInt32LE(MAGIC.length);
    const hstart = MAGIC.length + 4;
    const header = JSON.parse(buf.subarray(hstart, hstart + hlen).toString("utf8")) as {
      fingerprint: Fingerprint;
      meta: Record<string, unknown>;
      arrays: { name: string; length: number }[];
    };
    if (!sameFingerprint(header.fingerprint, fp)) return null;
    let off = align8(hstart + hlen);
    const arrays: Record<string, Float64Array> = {};
    for (const a of header.arrays) {
      const bytes = a.length * 8;
      if (off + bytes > buf.length) return null;
      const copy = new Float64Array(a.length);
      Buffer.from(copy.buffer).set(buf.subarray(off, off + bytes));
      arrays[a.name] = copy;
      off += bytes;
    }
    return { meta: header.meta, arrays };
  } catch {
    return null; // a damaged cache entry is rebuilt, never trusted
  }
}

/** Store an index atomically (write to a temp file, then rename). */
export function saveIndex(cacheDir: string, file: string, key: string, fp: Fingerprint, idx: CachedIndex): void {
  fs.mkdirSync(cacheDir, { recursive: true });
  const names = Object.keys(idx.arrays);
  const header = Buffer.from(
    JSON.stringify({ fingerprint: fp, meta: idx.meta, arrays: names.map((n) => ({ name: n, length: idx.arrays[n]!.length })) }),
  );
  const hstart = MAGIC.length + 4;
  const dataStart = align8(hstart + header.length);
  const total = dataStart + names.reduce((a, n) => a + idx.arrays[n]!.length * 8, 0);
  const out = Buffer.alloc(total);
  MAGIC.copy(out, 0);
  out.writeUInt32LE(header.length, MAGIC.length);
  header.copy(out, hstart);
  let off = dataStart;
  for (const n of names) {
    const a = idx.arrays[n]!;
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(out, off);
    off += a.byteLength;
  }
  const p = entryPath(cacheDir, file, key);
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, out);
  fs.renameSync(tmp, p);
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
