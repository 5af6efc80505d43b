/**
 * JSONL sources: one JSON object per line, the sample's text in a configurable field.
 * Random access through a byte-offset index of the lines, built once per file (every line
 * is parsed then, so a bad line is reported with its file and line number before any
 * batch is served) and cached by `index-cache.ts`. Blank lines are not samples.
 */
import { jsonReason } from "./text-files.js";
import { lastAtOrBelow } from "../util/search.js";
import * as fs from "node:fs";
import { FileBytes } from "./file-bytes.js";
import { fingerprint, loadIndex, saveIndex } from "./index-cache.js";
import { SourceError, type Source } from "./source.js";
import { progress } from "../util/progress.js";
import { readDifficultyFile } from "./difficulty.js";
import { internal } from "../errors.js";

export interface JsonlOptions {
  readonly paths: readonly string[];
  readonly textField: string;
  readonly difficultyField?: string | undefined;
  readonly difficultyFile?: string | undefined;
  readonly cacheDir: string;
}

interface FileIndex {
  bytes: FileBytes;
  starts: Float64Array;
  ends: Float64Array;
  textBytes: number;
  difficulty: Float64Array | null;
}

const CHUNK = 8 * 1024 * 1024;
const NEWLINE = 0x0a;

export class JsonlSource implements Source {
  readonly kind = "text" as const;
  readonly dtype = null;
  readonly windowTokens = null;
  readonly size: number;
  readonly sizeMeasure: number;
  readonly difficulty: Float64Array | null;
  private readonly files: FileIndex[];
  /** prefix[i] = first global sample index of file i. */
  private readonly prefix: number[];
  private readonly textField: string;

  constructor(opts: JsonlOptions) {
    this.textField = opts.textField;
    this.files = opts.paths.map((p) => indexFile(p, opts));
    this.prefix = [0];
    for (const f of this.files) this.prefix.push(this.prefix[this.prefix.length - 1]! + f.starts.length);
    this.size = this.prefix[this.prefix.length - 1]!;
    this.sizeMeasure = this.files.reduce((a, f) => a + f.textBytes, 0);
    if (opts.difficultyFile) {
      this.difficulty = readDifficultyFile(opts.difficultyFile, this.size);
    } else if (opts.difficultyField) {
      const d = new Float64Array(this.size);
      this.files.forEach((f, i) => d.set(f.difficulty!, this.prefix[i]!));
      this.difficulty = d;
    } else {
      this.difficulty = null;
    }
  }

  payload(i: number): Buffer {
    return Buffer.from(this.text(i), "utf8");
  }

  /** The text of sample i. */
  text(i: number): string {
    const [f, j] = this.locate(i);
    const line = f.bytes.slice(f.starts[j]!, f.ends[j]!);
    return (JSON.parse(line.toString("utf8")) as Record<string, string>)[this.textField]!;
  }

  copyWindow(): number {
    throw internal("JSONL sources have no fixed windows");
  }

  textSample(max: number): string[] {
    const n = Math.min(max, this.size);
    const out: string[] = [];
    for (let k = 0; k < n; k++) out.push(this.text(Math.floor((k * this.size) / n)));
    return out;
  }

  close(): void {
    for (const f of this.files) f.bytes.close();
  }

  private locate(i: number): [FileIndex, number] {
    const f = lastAtOrBelow(this.files.length, i, (k) => this.prefix[k]!);
    return [this.files[f]!, i - this.prefix[f]!];
  }
}

function indexFile(file: string, opts: JsonlOptions): FileIndex {
  if (!fs.existsSync(file)) throw new SourceError(`${file}: file not found`);
  const st = fs.statSync(file);
  if (!st.isFile()) throw new SourceError(`${file}: not a regular file`);
  if (st.size === 0) throw new SourceError(`${file}: file is empty`);
  const fp = fingerprint(file);
  const key = `jsonl:${opts.textField}:${opts.difficultyField ?? ""}`;
  const cached = loadIndex(opts.cacheDir, file, key, fp);
  const bytes = new FileBytes(file, st.size);
  if (cached) {
    return {
      bytes,
      starts: cached.arrays.starts!,
      ends: cached.arrays.ends!,
      textBytes: cached.meta.textBytes as number,
      difficulty: cached.arrays.difficulty ?? null,
    };
  }
  const built = buildIndex(file, st.size, opts);
  const arrays: Record<string, Float64Array> = { starts: built.starts, ends: built.ends };
  if (built.difficulty) arrays.difficulty = built.difficulty;
  saveIndex(opts.cacheDir, file, key, fp, { meta: { textBytes: built.textBytes }, arrays });
  return { bytes, ...built };
}

function buildIndex(file: string, size: number, opts: JsonlOptions): Omit<FileIndex, "bytes"> {
  const starts: number[] = [];
  const ends: number[] = [];
  const diffs: number[] = [];
  let textBytes = 0;
  const fd = fs.openSync(file, "r");
  const prog = progress(`indexing ${file}`);
  try {
    const chunk = Buffer.allocUnsafe(CHUNK);
    let carry = Buffer.alloc(0);
    let carryStart = 0;
    let pos = 0;
    let lineNo = 0;
    const onLine = (buf: Buffer, start: number): void => {
      lineNo++;
      let end = buf.length;
      if (end > 0 && buf[end - 1] === 0x0d) end--; // tolerate CRLF
      const text = buf.subarray(0, end).toString("utf8");
      if (text.trim() === "") return;
      let obj: unknown;
      try {
        obj = JSON.parse(text);
      } catch (e) {
        throw new SourceError(`${file}:${lineNo}: invalid JSON (${jsonReason(e as Error)})`);
      }
      if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new SourceError(`${file}:${lineNo}: expected a JSON object`);
      const t = (obj as Record<string, unknown>)[opts.textField];
      if (typeof t !== "string") throw new SourceError(`${file}:${lineNo}: missing text field "${opts.textField}" (or it is not a string)`);
      if (opts.difficultyField) {
        const d = (obj as Record<string, unknown>)[opts.difficultyField];
        if (typeof d !== "number" || !Number.isFinite(d)) {
          throw new SourceError(`${file}:${lineNo}: difficulty field "${opts.difficultyField}" is missing or not a finite number`);
        }
        diffs.push(d);
      }
      textBytes += Buffer.byteLength(t, "utf8");
      starts.push(start);
      ends.push(start + end);
    };
    for (;;) {
      const n = fs.readSync(fd, chunk, 0, CHUNK, pos);
      if (n <= 0) break;
      const data = carry.length ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      const base = carry.length ? carryStart : pos;
      let lineStart = 0;
      for (;;) {
        const nl = data.indexOf(NEWLINE, lineStart);
        if (nl < 0) break;
        onLine(data.subarray(lineStart, nl), base + lineStart);
        lineStart = nl + 1;
      }
      carry = Buffer.from(data.subarray(lineStart));
      carryStart = base + lineStart;
      pos += n;
      prog.update(pos, size);
    }
    if (carry.length) onLine(carry, carryStart);
  } finally {
    fs.closeSync(fd);
    prog.done();
  }
  if (starts.length === 0) throw new SourceError(`${file}: no samples (only blank lines)`);
  return {
    starts: Float64Array.from(starts),
    ends: Float64Array.from(ends),
    textBytes,
    difficulty: opts.difficultyField ? Float64Array.from(diffs) : null,
  };
}
