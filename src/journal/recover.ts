/**
 * Reading a journal directory back: `recoverSegments` is what `Journal.open` does before it
 * can write (remove unpublished temporary segments, verify every checksum from the newest
 * checkpoint on, cut a torn tail of the newest segment), and `scanSegments` reads the same
 * records without modifying anything (offline tools).
 *
 * Recovery never skips a bad record silently: only a torn tail at the very end of the newest
 * segment (what a crash mid-write leaves) is dropped, with a warning; anything else throws
 * JournalCorruptError naming the segment file and byte offset.
 */
import { open as openFile, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { HEADER_BYTES, JournalCorruptError, segmentName } from "./format.js";
import { listSegments, scanSegment, type StoredRecord } from "./reader.js";
import type { JournalOptions, RecoveryResult, ScanOptions } from "./options.js";
import { checkContiguous, createSegment, fileSize, fsyncDir, liveChain } from "./segments.js";

/** What the writer continues from: the newest segment open at its valid end. */
export interface Recovered extends RecoveryResult {
  readonly fh: FileHandle;
  readonly seg: number;
  readonly pos: number;
  readonly sizes: Map<number, number>;
  /** fsyncs made (counted in the journal's stats). */
  readonly fsyncs: number;
}

export async function recoverSegments(dir: string, opts: JournalOptions): Promise<Recovered> {
  const fsyncOn = (opts.durability ?? "fsync") === "fsync";
  const warnings: string[] = [];
  const listing = await listSegments(dir);
  for (const t of listing.tmp) {
    await unlink(join(dir, t));
    warnings.push(`removed ${t}: an unfinished new segment left by a crash during rotation or checkpoint (it was never published, nothing acknowledged is lost)`);
  }
  if (listing.tmp.length > 0 && fsyncOn) await fsyncDir(dir);

  const sizes = new Map<number, number>();
  if (listing.numbers.length === 0) {
    const fh = await createSegment(dir, 1, null, 0, fsyncOn);
    sizes.set(1, HEADER_BYTES);
    return { fh, seg: 1, pos: HEADER_BYTES, sizes, fsyncs: fsyncOn ? 2 : 0, records: [], warnings, checkpoint: null };
  }

  const chain = await liveChain(dir, listing.numbers);
  const records: StoredRecord[] = [];
  const onRecord = opts.onRecord ?? ((r: StoredRecord) => void records.push(r));
  let lastEnd = HEADER_BYTES;
  const last = chain.numbers[chain.numbers.length - 1]!;
  for (const num of chain.numbers) {
    const res = await scanSegment(dir, num, num === last, onRecord);
    sizes.set(num, res.size);
    if (res.problem) {
      if (res.problem.kind === "corrupt") {
        throw new JournalCorruptError(res.problem.segment, res.problem.offset, res.problem.reason);
      }
      const fh = await openFile(join(dir, res.name), "r+");
      try {
        await fh.truncate(res.validEnd);
        if (fsyncOn) await fh.sync();
      } finally {
        await fh.close();
      }
      warnings.push(
        `dropped torn tail of ${res.name}: ${res.size - res.validEnd} bytes from offset ${res.validEnd} (${res.problem.reason}); this is what a crash in the middle of a write leaves, and those bytes were never acknowledged`,
      );
      sizes.set(num, res.validEnd);
    }
    lastEnd = res.validEnd;
  }
  for (const n of listing.numbers) {
    if (!sizes.has(n)) sizes.set(n, await fileSize(join(dir, segmentName(n))));
  }
  const fh = await openFile(join(dir, segmentName(last)), "r+");
  return {
    fh,
    seg: last,
    pos: lastEnd,
    sizes,
    fsyncs: 0,
    records,
    warnings,
    checkpoint: chain.checkpoint === null ? null : { segment: segmentName(chain.checkpoint), snapshotRecords: chain.snapshotRecords },
  };
}

/**
 * Read the journal in `dir` without opening it for writing and without modifying anything;
 * records are yielded in order. Memory is bounded by about one segment's records, not the
 * whole journal. A torn tail ends the iteration (reported through `onWarning`);
 * corruption throws {@link JournalCorruptError}.
 */
export async function* scanSegments(dir: string, opts: ScanOptions = {}): AsyncGenerator<StoredRecord, void, undefined> {
  const listing = await listSegments(dir);
  if (listing.numbers.length === 0) return;
  const numbers = opts.from === "all" ? listing.numbers : (await liveChain(dir, listing.numbers)).numbers;
  if (opts.from === "all") checkContiguous(numbers);
  const last = numbers[numbers.length - 1]!;
  for (const num of numbers) {
    const batch: StoredRecord[] = [];
    const res = await scanSegment(dir, num, num === last, (r) => void batch.push(r));
    yield* batch;
    if (res.problem) {
      if (res.problem.kind === "corrupt") {
        throw new JournalCorruptError(res.problem.segment, res.problem.offset, res.problem.reason);
      }
      opts.onWarning?.(`torn tail in ${res.name} at offset ${res.validEnd}: ${res.problem.reason}`);
    }
  }
}
