/**
 * Random-access bytes of one file: the whole file in memory when it is small enough
 * (the common case for benchmark corpora: one read, then slices with no syscalls), or
 * positioned reads on an open descriptor for large files.
 *
 * Reading a whole file is the one heavy step left when the serving thread opens a prepared
 * run (src/runs/prepare.ts): the worker that prepared it records which files its sources
 * read whole (`recordWholeFiles`), and the serving thread reads those asynchronously
 * (`preloadWholeFiles`, on libuv's thread pool) before it opens the sources, which then take
 * the preloaded bytes instead of blocking the event loop on readFileSync.
 */
import * as fs from "node:fs";
import { precondition } from "../errors.js";

/** Files up to this size are loaded whole. */
export const IN_MEMORY_LIMIT = 512 * 1024 * 1024;

/** Whole-file reads done ahead of time, by path, taken (once) by the next FileBytes of that path and size. */
const preloaded = new Map<string, Buffer>();
/** While `recordWholeFiles` runs: the files read whole. */
let recording: string[] | null = null;

/** Run `fn`, returning the files it read whole (a worker thread's preparation of one domain). */
export function recordWholeFiles<T>(fn: () => T): { value: T; files: string[] } {
  const outer = recording;
  const files: string[] = [];
  recording = files;
  try {
    return { value: fn(), files };
  } finally {
    recording = outer;
  }
}

/** Read `files` without blocking the event loop, for the FileBytes about to be opened on them. */
export async function preloadWholeFiles(files: readonly string[]): Promise<void> {
  for (const f of files) preloaded.set(f, await fs.promises.readFile(f));
}

/** Forget the preloaded reads of `files` that no source took (a failed open). */
export function dropPreloaded(files: readonly string[]): void {
  for (const f of files) preloaded.delete(f);
}

export class FileBytes {
  readonly path: string;
  readonly size: number;
  private readonly buf: Buffer | null;
  private fd: number | null;

  constructor(path: string, size: number) {
    this.path = path;
    this.size = size;
    if (size <= IN_MEMORY_LIMIT) {
      const pre = preloaded.get(path);
      preloaded.delete(path);
      // A preloaded read of another size: the file changed since; read it as it is now.
      this.buf = pre !== undefined && pre.length === size ? pre : fs.readFileSync(path);
      this.fd = null;
      recording?.push(path);
    } else {
      this.buf = null;
      this.fd = fs.openSync(path, "r");
    }
  }

  /** Bytes [start, end): a view when in memory, a fresh buffer otherwise. */
  slice(start: number, end: number): Buffer {
    if (this.buf) return this.buf.subarray(start, end);
    const out = Buffer.allocUnsafe(end - start);
    this.readInto(start, end, out, 0);
    return out;
  }

  /** Copy bytes [start, end) into dst at offset. */
  readInto(start: number, end: number, dst: Buffer, offset: number): void {
    if (this.buf) {
      this.buf.copy(dst, offset, start, end);
      return;
    }
    let pos = 0;
    const len = end - start;
    while (pos < len) {
      const n = fs.readSync(this.fd!, dst, offset + pos, len - pos, start + pos);
      if (n <= 0) throw precondition(`${this.path}: unexpected end of file at byte ${start + pos}`);
      pos += n;
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}
