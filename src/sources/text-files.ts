/**
 * Reading the documents of one text file in order, whatever its container: JSONL (plain,
 * gzip or zstd — recognised by magic bytes, not by name), Parquet (one text column, row
 * group by row group, hyparquet: a maintained pure-JS reader with the common codecs from
 * hyparquet-compressors) and Arrow IPC (file or stream format, the shards HF datasets'
 * save_to_disk writes; apache-arrow). Streamed with bounded memory: one chunk, row group or
 * record batch at a time. Used at index time (worker threads), never on the batch path.
 * Errors name the file and, for JSONL, the line.
 */
import * as fs from "node:fs";
import * as zlib from "node:zlib";
import { SourceError } from "./source.js";

export type TextFormat = "jsonl" | "parquet" | "arrow";

export interface TextFileSpec {
  readonly file: string;
  readonly format: TextFormat;
  /** JSON field or column holding the text. */
  readonly field: string;
}

export type Compression = "gzip" | "zstd" | null;

/** Compression of a file by its first bytes. */
export function compressionOf(file: string): Compression {
  const fd = fs.openSync(file, "r");
  try {
    const head = Buffer.alloc(4);
    const n = fs.readSync(fd, head, 0, 4, 0);
    if (n >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
    if (n >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

const MAGIC_PAR1 = Buffer.from("PAR1");
const MAGIC_ARROW = Buffer.from("ARROW1");

/** What a file's first bytes say it is, for messages about a wrong `format`. */
export function sniff(file: string): string | null {
  const fd = fs.openSync(file, "r");
  try {
    const head = Buffer.alloc(16);
    const n = fs.readSync(fd, head, 0, 16, 0);
    const h = head.subarray(0, n);
    if (h.subarray(0, 4).equals(MAGIC_PAR1)) return "a Parquet file (use format: parquet)";
    if (h.subarray(0, 6).equals(MAGIC_ARROW)) return "an Arrow IPC file (use format: arrow)";
    if (n >= 8 && h.readUInt32LE(0) === 0xffffffff) return "an Arrow IPC stream (use format: arrow)";
    if (h.subarray(0, 9).equals(Buffer.from("MMIDIDX\x00\x00", "latin1"))) return "a Megatron-Core index (use format: megatron)";
    return null;
  } finally {
    fs.closeSync(fd);
  }
}

export interface ReadProgress {
  (doneBytes: number, totalBytes: number): void;
}

/** The documents of a file, in order, in batches. */
export async function* readDocuments(spec: TextFileSpec, onProgress?: ReadProgress): AsyncGenerator<string[]> {
  if (spec.format === "jsonl") yield* readJsonl(spec, onProgress);
  else if (spec.format === "parquet") yield* readParquet(spec, onProgress);
  else yield* readArrow(spec, onProgress);
}

const CHUNK = 4 * 1024 * 1024;

/** Decoded bytes of a (possibly compressed) file, chunk by chunk, with the compressed position. */
async function* decodedChunks(file: string, compression: Compression, label: string): AsyncGenerator<[Buffer, number]> {
  const src = fs.createReadStream(file, { highWaterMark: CHUNK });
  if (compression === "gzip") {
    const z = zlib.createGunzip();
    src.on("error", (e) => z.destroy(e));
    src.pipe(z);
    try {
      for await (const c of z) yield [c as Buffer, src.bytesRead];
    } catch (e) {
      throw new SourceError(`${label}: the gzip data is damaged or truncated (${(e as Error).message})`);
    }
    return;
  }
  if (compression === "zstd") {
    const { Decompress } = await import("fzstd");
    const out: Buffer[] = [];
    const d = new Decompress((chunk) => out.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
    const feed = (c: Uint8Array, final: boolean): void => {
      try {
        d.push(c, final);
      } catch (e) {
        throw new SourceError(`${label}: the zstd data is damaged or truncated (${(e as Error).message})`);
      }
    };
    let read = 0;
    for await (const c of src) {
      const b = c as Buffer;
      read += b.length;
      feed(new Uint8Array(b.buffer, b.byteOffset, b.byteLength), false);
      // fzstd keeps references to pushed output; copy before handing on.
      if (out.length) yield [Buffer.concat(out.splice(0)), read];
    }
    feed(new Uint8Array(0), true);
    if (out.length) yield [Buffer.concat(out.splice(0)), read];
    return;
  }
  for await (const c of src) yield [c as Buffer, src.bytesRead];
}

async function* readJsonl(spec: TextFileSpec, onProgress?: ReadProgress): AsyncGenerator<string[]> {
  const { file, field } = spec;
  const compression = compressionOf(file);
  const label = compression ? `${file} (${compression}-compressed)` : file;
  const size = fs.statSync(file).size;
  let carry = Buffer.alloc(0);
  let lineNo = 0;
  let samples = 0;
  const lines = (data: Buffer, final: boolean): string[] => {
    const docs: string[] = [];
    let start = 0;
    for (;;) {
      let nl = data.indexOf(0x0a, start);
      if (nl < 0) {
        if (!final || start >= data.length) break;
        nl = data.length;
      }
      lineNo++;
      let end = nl;
      if (end > start && data[end - 1] === 0x0d) end--;
      const text = data.subarray(start, end).toString("utf8");
      start = nl + 1;
      if (text.trim() === "") continue;
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        const hint = compression ? null : sniff(file);
        throw new SourceError(hint ? `${file}: not JSONL, this is ${hint}` : `${label}:${lineNo}: invalid JSON (${jsonReason(e as Error)})`);
      }
      if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new SourceError(`${label}:${lineNo}: expected a JSON object`);
      const t = (obj as Record<string, unknown>)[field];
      if (typeof t !== "string") throw new SourceError(`${label}:${lineNo}: missing text field "${field}" (or it is not a string)`);
      docs.push(t);
    }
    carry = start < data.length ? Buffer.from(data.subarray(start)) : Buffer.alloc(0);
    samples += docs.length;
    return docs;
  };
  for await (const [chunk, pos] of decodedChunks(file, compression, label)) {
    const docs = lines(carry.length ? Buffer.concat([carry, chunk]) : chunk, false);
    onProgress?.(pos, size);
    if (docs.length) yield docs;
  }
  const docs = lines(carry, true);
  if (docs.length) yield docs;
  if (samples === 0) throw new SourceError(`${label}: no samples${compression ? " after decompression" : ""} (only blank lines)`);
}

/** A JSON.parse error without the input it quotes (errors never echo file contents). */
export function jsonReason(e: Error): string {
  const m = /(Unexpected [a-z ]+|Unterminated string|Expected [^"]*|Bad control character)/.exec(e.message);
  return m ? m[1]!.trim() : "syntax error";
}

async function* readParquet(spec: TextFileSpec, onProgress?: ReadProgress): AsyncGenerator<string[]> {
  const { file, field } = spec;
  const hp = await import("hyparquet");
  const { compressors } = await import("hyparquet-compressors");
  const buf = await hp.asyncBufferFromFile(file);
  let metadata: Awaited<ReturnType<typeof hp.parquetMetadataAsync>>;
  try {
    metadata = await hp.parquetMetadataAsync(buf);
  } catch (e) {
    const hint = sniff(file);
    throw new SourceError(`${file}: not a readable Parquet file${hint && !hint.startsWith("a Parquet") ? `; this is ${hint}` : ""} (${(e as Error).message})`);
  }
  const columns = hp.parquetSchema(metadata).children.map((c) => c.element.name);
  if (!columns.includes(field)) throw new SourceError(`${file}: no column "${field}" (columns: ${columns.join(", ")}); set textColumn`);
  let row = 0;
  const total = Number(metadata.num_rows);
  for (const rg of metadata.row_groups) {
    const n = Number(rg.num_rows);
    const rows = await hp.parquetReadObjects({ file: buf, metadata, columns: [field], rowStart: row, rowEnd: row + n, compressors });
    const docs: string[] = [];
    for (let k = 0; k < rows.length; k++) {
      const t = (rows[k] as Record<string, unknown>)[field];
      if (typeof t !== "string") throw new SourceError(`${file}: row ${row + k}: column "${field}" is ${t === null || t === undefined ? "null" : `not a string (${typeof t})`}`);
      docs.push(t);
    }
    row += n;
    onProgress?.(row, total);
    if (docs.length) yield docs;
  }
}

async function* readArrow(spec: TextFileSpec, onProgress?: ReadProgress): AsyncGenerator<string[]> {
  const { file, field } = spec;
  const arrow = await import("apache-arrow");
  const size = fs.statSync(file).size;
  let reader: Awaited<ReturnType<typeof arrow.RecordBatchReader.from>>;
  try {
    reader = await arrow.RecordBatchReader.from(fs.createReadStream(file));
    await reader.open();
  } catch (e) {
    const hint = sniff(file);
    throw new SourceError(`${file}: not a readable Arrow IPC file or stream${hint && !hint.includes("Arrow") ? `; this is ${hint}` : ""} (${(e as Error).message})`);
  }
  const names = reader.schema.fields.map((f) => f.name);
  if (!names.includes(field)) throw new SourceError(`${file}: no column "${field}" (columns: ${names.join(", ")}); set textColumn`);
  let row = 0;
  let bytes = 0;
  for await (const batch of reader) {
    const col = batch.getChild(field)!;
    const docs: string[] = new Array<string>(batch.numRows);
    for (let k = 0; k < batch.numRows; k++) {
      const t: unknown = col.get(k);
      if (typeof t !== "string") throw new SourceError(`${file}: row ${row + k}: column "${field}" is ${t === null ? "null" : "not a string"}`);
      docs[k] = t;
      bytes += t.length;
    }
    row += batch.numRows;
    onProgress?.(Math.min(bytes, size), size);
    if (docs.length) yield docs;
  }
  if (row === 0) throw new SourceError(`${file}: no rows`);
}
