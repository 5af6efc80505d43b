/**
 * Random-access bytes of one file: the whole file in memory when it is small enough
 * (the common case for benchmark corpora: one read, then slices with no syscalls), or
 * positioned reads on an open descriptor for large files.
 */
import * as fs from "node:fs";
import { precondition } from "../errors.js";

/** Files up to this size are loaded whole. */
export const IN_MEMORY_LIMIT = 512 * 1024 * 1024;

export class FileBytes {
  readonly path: string;
  readonly size: number;
  private readonly buf: Buffer | null;
  private fd: number | null;

  constructor(path: string, size: number) {
    this.path = path;
    this.size = size;
    if (size <= IN_MEMORY_LIMIT) {
      this.buf = fs.readFileSync(path);
      this.fd = null;
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
