/**
 * Segment files as units: which segments recovery reads (the live chain from the newest
 * checkpoint), and how a new segment is published — written whole under a temporary name,
 * fsynced, renamed, the directory fsynced — so a named segment always has a whole header
 * and snapshot, whatever instant a crash hits.
 */
import { open as openFile, rename, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { JournalCorruptError, encodeHeader, segmentName } from "./format.js";
import { listSegments, readSegmentHeader } from "./reader.js";
import { unavailable } from "../errors.js";

/**
 * The segments recovery reads: from the newest checkpoint segment (or the first segment) to
 * the newest, which must be consecutively numbered. Older segments are history.
 */
export async function liveChain(
  dir: string,
  numbers: readonly number[],
): Promise<{ numbers: number[]; checkpoint: number | null; snapshotRecords: number }> {
  let start = 0;
  let checkpoint: number | null = null;
  let snapshotRecords = 0;
  for (let i = numbers.length - 1; i >= 0; i--) {
    const num = numbers[i]!;
    const h = await readSegmentHeader(dir, num);
    if (typeof h === "string") throw new JournalCorruptError(segmentName(num), 0, h);
    if (h.checkpoint) {
      start = i;
      checkpoint = num;
      snapshotRecords = h.snapshotRecords;
      break;
    }
  }
  const chain = numbers.slice(start);
  if (checkpoint === null && chain[0] !== 1) {
    throw new JournalCorruptError(
      segmentName(chain[0]!),
      0,
      `the journal has no checkpoint, so it must start at ${segmentName(1)}, but the oldest segment is ${segmentName(chain[0]!)}: earlier segments are missing`,
    );
  }
  checkContiguous(chain);
  return { numbers: chain, checkpoint, snapshotRecords };
}

export function checkContiguous(numbers: readonly number[]): void {
  for (let i = 1; i < numbers.length; i++) {
    if (numbers[i] !== numbers[i - 1]! + 1) {
      throw new JournalCorruptError(
        segmentName(numbers[i]!),
        0,
        `segment(s) missing between ${segmentName(numbers[i - 1]!)} and ${segmentName(numbers[i]!)}`,
      );
    }
  }
}

/**
 * Write a new segment completely under a temporary name, fsync it, rename it into place and
 * fsync the directory, so that a named segment always has a whole header and snapshot.
 * Returns a handle open for writing at the end.
 */
export async function createSegment(dir: string, num: number, snapshot: Buffer | null, snapshotRecords: number, fsyncOn: boolean): Promise<FileHandle> {
  const name = segmentName(num);
  const tmp = join(dir, `${name}.tmp`);
  const fh = await openFile(tmp, "w+");
  try {
    const header = encodeHeader({ checkpoint: snapshot !== null, segmentNumber: num, snapshotRecords });
    const body = snapshot === null ? header : Buffer.concat([header, snapshot]);
    await writeAll(fh, body, body.length, 0);
    if (fsyncOn) await fh.sync();
    await rename(tmp, join(dir, name));
    if (fsyncOn) await fsyncDir(dir);
    return fh;
  } catch (e) {
    await fh.close().catch(() => undefined);
    throw e;
  }
}

export async function writeAll(fh: FileHandle, buf: Buffer, len: number, pos: number): Promise<void> {
  let off = 0;
  while (off < len) {
    const { bytesWritten } = await fh.write(buf, off, len - off, pos + off);
    if (bytesWritten <= 0) throw unavailable(`short write to journal (${off} of ${len} bytes)`);
    off += bytesWritten;
  }
}

/**
 * Compaction's second half, once the checkpoint segment `seg` is durable: delete every
 * older segment, those `known` (removed from it) and any others on disk (history from
 * before the journal was opened), then make the deletions durable. Returns the fsyncs done.
 */
export async function dropSegmentsBefore(dir: string, seg: number, known: Map<number, number>, fsyncOn: boolean): Promise<number> {
  const older = [...known.keys()].filter((n) => n < seg);
  const listing = await listSegments(dir);
  for (const n of listing.numbers) if (n < seg && !older.includes(n)) older.push(n);
  for (const n of older) {
    await unlink(join(dir, segmentName(n))).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== "ENOENT") throw e;
    });
    known.delete(n);
  }
  if (!fsyncOn || older.length === 0) return 0;
  await fsyncDir(dir);
  return 1;
}

/** fsync a directory so that file creations, renames and deletions in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await openFile(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function fileSize(p: string): Promise<number> {
  const fh = await openFile(p, "r");
  try {
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}
