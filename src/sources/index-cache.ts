/**
 * On-disk cache of source indexes (line offsets, document boundaries, difficulty), built
 * once and stored under `<dataDir>/index/`. Each entry is keyed by the file's absolute
 * path and the index options, and carries a fingerprint of the file (size, mtime, ctime,
 * inode, hashes of its first and last 64 KiB): a changed file is re-indexed, never silently
 * misread. ctime is what catches a file rewritten with the same size whose mtime was set
 * back (utimes cannot set ctime); the change of a middle byte is then seen although the
 * head and tail hashes agree. A damaged entry (truncated, garbled header, short arrays) and
 * such a same-size-and-mtime change are rebuilt with a warning naming the file.
 *
 * Format: "MXIDX1\n" | u32 LE header length | header JSON (padded to 8 bytes) |
 * float64 LE arrays in header order. The header holds a SHA-1 of the array bytes (`sum`),
 * so garbled offsets are caught, not served.
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { threadId } from "node:worker_threads";
import { sourceWarning } from "./warnings.js";

const MAGIC = Buffer.from("MXIDX1\n");
const EDGE = 64 * 1024;

export interface Fingerprint {
  size: number;
  mtimeMs: number;
  /** Status-change time and inode: a rewrite or replacement changes them even if mtime is set back. */
  ctimeMs: number;
  ino: number;
  head: string;
  tail: string;
}

export interface CachedIndex {
  meta: Record<string, unknown>;
  arrays: Record<string, Float64Array>;
}

/** Fingerprint a file cheaply: size, mtime, ctime, inode and hashes of its head and tail. */
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
      ctimeMs: st.ctimeMs,
      ino: st.ino,
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
  return a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs && a.ino === b.ino && a.head === b.head && a.tail === b.tail;
}

interface Header {
  fingerprint: Fingerprint;
  meta: Record<string, unknown>;
  arrays: { name: string; length: number }[];
  /** SHA-1 (hex) of the array bytes; absent in entries written before it. */
  sum?: string;
}

/** Why an entry's bytes cannot be an index, or its header and where its arrays start. */
function damage(buf: Buffer): { why: string } | { header: Header; dataStart: number } {
  if (buf.length < MAGIC.length + 4 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return { why: "not an index file (bad magic)" };
  const hlen = buf.readUInt32LE(MAGIC.length);
  const hstart = MAGIC.length + 4;
  if (hstart + hlen > buf.length) return { why: `truncated (header of ${hlen} bytes, file of ${buf.length})` };
  let header: Header;
  try {
    header = JSON.parse(buf.subarray(hstart, hstart + hlen).toString("utf8")) as Header;
  } catch {
    return { why: "its header is not valid JSON" };
  }
  if (!header || typeof header !== "object" || !header.fingerprint || !Array.isArray(header.arrays) || header.arrays.some((a) => !a || typeof a.name !== "string" || !Number.isSafeInteger(a.length) || a.length < 0)) {
    return { why: "its header lacks the fingerprint or the array table" };
  }
  const dataStart = align8(hstart + hlen);
  const need = dataStart + header.arrays.reduce((n, a) => n + a.length * 8, 0);
  if (need !== buf.length) return { why: `truncated or padded (${buf.length} bytes, the header describes ${need})` };
  if (header.sum !== undefined && createHash("sha1").update(buf.subarray(dataStart)).digest("hex") !== header.sum) {
    return { why: "garbled (its arrays do not match their checksum)" };
  }
  return { header, dataStart };
}

/**
 * Load a cached index if present and its fingerprint matches the file now. A damaged entry,
 * or a file that changed under the same size and modification time, is reported (a warning
 * naming the file) and null is returned: the caller re-indexes and overwrites the entry.
 */
export function loadIndex(cacheDir: string, file: string, key: string, fp: Fingerprint): CachedIndex | null {
  const p = entryPath(cacheDir, file, key);
  let buf: Buffer;
  try {
    buf = fs.readFileSync(p);
  } catch {
    return null; // not cached yet
  }
  const d = damage(buf);
  if ("why" in d) {
    sourceWarning("damaged index cache entry: re-indexing the file", { file, cache: p, detail: `the cached index of ${file} (${p}) is ${d.why}; it is rebuilt from the file` });
    return null;
  }
  const was = d.header.fingerprint;
  if (!sameFingerprint(was, fp)) {
    // An entry from before ctime/inode were recorded is simply rebuilt, as is a file whose
    // size or mtime changed (it was edited the ordinary way); the same size and mtime with
    // different content or a different file behind the path is what deserves a word.
    const older = was.ctimeMs === undefined || was.ino === undefined || d.header.sum === undefined;
    if (!older && was.size === fp.size && was.mtimeMs === fp.mtimeMs) {
      sourceWarning("data file changed under the same size and modification time: re-indexing it", {
        file,
        cache: p,
        detail: `${file} has the size (${fp.size} bytes) and modification time it had when it was indexed, but it was rewritten or replaced since (${was.ino !== fp.ino ? "another inode" : "its status-change time moved"}${was.head !== fp.head || was.tail !== fp.tail ? ", and its first or last 64 KiB differ" : ""}); its cached index is rebuilt. Runs created on its earlier content are refused at recovery if their data fingerprint no longer matches`,
      });
    }
    return null;
  }
  const arrays: Record<string, Float64Array> = {};
  let off = d.dataStart;
  for (const a of d.header.arrays) {
    const bytes = a.length * 8;
    const copy = new Float64Array(a.length);
    Buffer.from(copy.buffer).set(buf.subarray(off, off + bytes));
    arrays[a.name] = copy;
    off += bytes;
  }
  return { meta: d.header.meta, arrays };
}

/** Store an index atomically (write to a temp file, then rename). */
export function saveIndex(cacheDir: string, file: string, key: string, fp: Fingerprint, idx: CachedIndex): void {
  fs.mkdirSync(cacheDir, { recursive: true });
  const names = Object.keys(idx.arrays);
  const sum = createHash("sha1");
  for (const n of names) sum.update(new Uint8Array(idx.arrays[n]!.buffer, idx.arrays[n]!.byteOffset, idx.arrays[n]!.byteLength));
  const header = Buffer.from(
    JSON.stringify({ fingerprint: fp, meta: idx.meta, arrays: names.map((n) => ({ name: n, length: idx.arrays[n]!.length })), sum: sum.digest("hex") }),
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
  const tmp = `${p}.${process.pid}.${threadId}.tmp`;
  fs.writeFileSync(tmp, out);
  fs.renameSync(tmp, p);
}

function align8(n: number): number {
  return (n + 7) & ~7;
}
