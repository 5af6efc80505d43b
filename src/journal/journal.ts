/**
 * The journal writer: append-only segments, group commit, rotation, checkpoints.
 *
 * Concurrency model. Every call (append, appendMany, checkpoint, close) is turned,
 * synchronously, into an entry of one FIFO queue of operations, and is assigned its final
 * place on disk right then (segment number and byte offset). A single writer loop executes
 * the queue in order. Consecutive appends share one "batch" entry: one Buffer into which each
 * frame is encoded (copy + CRC) at call time, so a caller may reuse its payload buffer as
 * soon as `append` returns. While the writer is busy with a write+fsync, new appends go into
 * the next batch, which is then written with one write() and covered by one fsync: group
 * commit without per-record syscalls. A checkpoint or rotation is a barrier in that queue, so
 * appends made after `checkpoint()` was called land after the snapshot, in the new segment,
 * and appends made before it land before it: none can be lost or reordered.
 *
 * Failure model. If a write or fsync fails, the journal stops: every queued and later call
 * rejects with JournalClosedError (cause: the I/O error). Retrying an fsync after a failure
 * is unsafe on Linux (the kernel may have dropped the dirty pages and report success next
 * time), so the only recovery is to reopen, which re-reads what is really on disk.
 */
import { mkdir, stat, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve as resolvePath } from "node:path";
import {
  HEADER_BYTES,
  JournalClosedError,
  JournalCorruptError,
  JournalLockedError,
  checkRecord,
  encodeFrame,
  frameBytes,
  segmentName,
} from "./format.js";
import type { StoredRecord } from "./reader.js";
import { internal, unavailable } from "../errors.js";
import { acquireLock, openDirs, releaseLock } from "./lock.js";
import { recoverSegments, scanSegments } from "./recover.js";
import { DEFAULT_SEGMENT_BYTES, validateOptions, type JournalOptions, type JournalStats, type RecordRef, type RecoveryResult, type ScanOptions } from "./options.js";
import { createSegment, dropSegmentsBefore, fsyncDir, writeAll } from "./segments.js";
import type { BatchOp, Op, Resolver } from "./ops.js";

export type { Durability, JournalOptions, JournalStats, RecordRef, ScanOptions } from "./options.js";

/** What `Journal.open` returns: the journal, open for writing, and what recovery read. */
export interface OpenResult extends RecoveryResult {
  journal: Journal;
}
export { fsyncDir, liveChain } from "./segments.js";
export { lockedBy } from "./lock.js";

const INITIAL_BATCH_BYTES = 64 * 1024;
/** How often (at most) a write checks that the journal folder is still the one it opened. */
const STILL_THERE_CHECK_MS = 1000;

export class Journal {
  private readonly dir: string;
  private readonly fsyncOn: boolean;
  private readonly segmentBytes: number;
  private readonly delayMs: number;
  private readonly onFsync: ((s: number, n: number) => void) | undefined;

  /** File handle and write position of the segment the writer loop is appending to. */
  private fh: FileHandle;
  private fhSeg: number;
  private writePos: number;
  /** Where the next accepted record will go (ahead of writePos while ops are queued). */
  private tailSeg: number;
  private tailPos: number;
  /** Existing segment files and their sizes as far as this instance knows. */
  private readonly segSizes = new Map<number, number>();

  private readonly ops: Op[] = [];
  private running = false;
  private closing: Promise<void> | null = null;
  private failed: unknown = null;
  private nAppends = 0;
  private nFsyncs = 0;
  /** Inode of the open segment and when its path was last checked (see `checkStillThere`). */
  private fhIno = -1;
  private checkedAt = -Infinity;

  private constructor(
    dir: string,
    opts: JournalOptions,
    fh: FileHandle,
    seg: number,
    pos: number,
    sizes: Map<number, number>,
  ) {
    this.dir = dir;
    this.fsyncOn = (opts.durability ?? "fsync") === "fsync";
    this.segmentBytes = opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES;
    this.delayMs = opts.groupCommitMaxDelayMs ?? 0;
    this.onFsync = opts.onFsync;
    this.fh = fh;
    this.fhSeg = this.tailSeg = seg;
    this.writePos = this.tailPos = pos;
    for (const [k, v] of sizes) this.segSizes.set(k, v);
  }

  /**
   * Open (or create) the journal in `opts.dir` and recover it.
   *
   * Reads from the newest checkpoint segment (or the first segment) to the end, verifying
   * every checksum. A torn final record of the newest segment (a crash mid-write) is cut off
   * with a warning; any other bad data throws {@link JournalCorruptError} naming the segment
   * and offset, and nothing is modified. Leftover `*.tmp` segments (a crash during rotation
   * or checkpoint, before the rename that publishes them) are deleted with a warning.
   * Throws {@link JournalLockedError} if another live process or Journal has the directory.
   */
  static async open(opts: JournalOptions): Promise<OpenResult> {
    validateOptions(opts);
    const dir = resolvePath(opts.dir);
    const created = await mkdir(dir, { recursive: true });
    // A new directory's own name must be durable too, or a power cut could lose the journal.
    if (created !== undefined && (opts.durability ?? "fsync") === "fsync") await fsyncDir(dirname(dir));
    if (openDirs.has(dir)) throw new JournalLockedError(`journal ${dir} is already open in this process`);
    await acquireLock(dir);
    openDirs.add(dir);
    try {
      return await Journal.recover(dir, opts);
    } catch (e) {
      openDirs.delete(dir);
      await releaseLock(dir);
      throw e;
    }
  }

  private static async recover(dir: string, opts: JournalOptions): Promise<OpenResult> {
    const r = await recoverSegments(dir, opts);
    const j = new Journal(dir, opts, r.fh, r.seg, r.pos, r.sizes);
    j.nFsyncs += r.fsyncs;
    return { journal: j, records: r.records, warnings: r.warnings, checkpoint: r.checkpoint };
  }

  /**
   * Read the journal in `dir` without opening it for writing and without modifying anything;
   * records are yielded in order. Memory is bounded by about one segment's records, not the
   * whole journal. A torn tail ends the iteration (reported through `onWarning`);
   * corruption throws {@link JournalCorruptError}.
   */
  static scan(dir: string, opts: ScanOptions = {}): AsyncGenerator<StoredRecord, void, undefined> {
    return scanSegments(dir, opts);
  }

  /** Append one record; resolves once it is durable (per durability mode), in append order. */
  append(type: number, payload: Uint8Array): Promise<RecordRef> {
    const err = this.refuse();
    if (err) return Promise.reject(err);
    try {
      checkRecord(type, payload);
    } catch (e) {
      return Promise.reject(e);
    }
    const size = frameBytes(payload.length);
    this.maybeRotate(size);
    const b = this.openBatch(size);
    const ref: RecordRef = { segment: segmentName(this.tailSeg), offset: this.tailPos };
    b.used = encodeFrame(b.buf, b.used, type, payload);
    b.records++;
    this.tailPos += size;
    const p = new Promise<RecordRef>((res, rej) => {
      b.resolves.push(res as Resolver);
      b.rejects.push(rej);
    });
    b.values.push(ref);
    this.kick();
    return p;
  }

  /**
   * Append several records as one batch: they are written with one write(), made durable by
   * one fsync, and land in one segment, contiguous and in order. Not atomic across a crash: a
   * crash before the promise resolves may leave any prefix of them.
   */
  appendMany(recs: readonly { type: number; payload: Uint8Array }[]): Promise<RecordRef[]> {
    const err = this.refuse();
    if (err) return Promise.reject(err);
    let total = 0;
    try {
      for (const r of recs) {
        checkRecord(r.type, r.payload);
        total += frameBytes(r.payload.length);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (recs.length === 0) return Promise.resolve([]);
    this.maybeRotate(total);
    const b = this.openBatch(total);
    const name = segmentName(this.tailSeg);
    const refs: RecordRef[] = [];
    for (const r of recs) {
      refs.push({ segment: name, offset: this.tailPos });
      b.used = encodeFrame(b.buf, b.used, r.type, r.payload);
      this.tailPos += frameBytes(r.payload.length);
    }
    b.records += recs.length;
    const p = new Promise<RecordRef[]>((res, rej) => {
      b.resolves.push(res as Resolver);
      b.rejects.push(rej);
    });
    b.values.push(refs);
    this.kick();
    return p;
  }

  /**
   * Start a new segment whose first records are `snapshot` (the caller's full live state),
   * make it durable, and, with `dropOlder`, delete every older segment (compaction).
   * Recovery then starts at this checkpoint. Appends called before `checkpoint()` are
   * ordered before it (the snapshot must already account for them); appends called after it
   * go after the snapshot. The new segment only becomes visible (renamed from `.tmp`) once
   * header and snapshot are fsynced, and older segments are deleted only after that, so a
   * crash at any point leaves either the old state or the new one. Default dropOlder: false.
   */
  checkpoint(snapshot: readonly { type: number; payload: Uint8Array }[], opts?: { dropOlder: boolean }): Promise<void> {
    const err = this.refuse();
    if (err) return Promise.reject(err);
    let total = 0;
    try {
      for (const r of snapshot) {
        checkRecord(r.type, r.payload);
        total += frameBytes(r.payload.length);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    const buf = Buffer.allocUnsafe(total);
    let off = 0;
    for (const r of snapshot) off = encodeFrame(buf, off, r.type, r.payload);
    this.tailSeg++;
    this.tailPos = HEADER_BYTES + total;
    const p = new Promise<void>((resolve, reject) => {
      this.ops.push({
        kind: "checkpoint",
        seg: this.tailSeg,
        buf,
        records: snapshot.length,
        dropOlder: opts?.dropOlder ?? false,
        resolve,
        reject,
      });
    });
    this.kick();
    return p;
  }

  stats(): JournalStats {
    let bytes = 0;
    for (const v of this.segSizes.values()) bytes += v;
    return { segments: this.segSizes.size, bytes, appends: this.nAppends, fsyncs: this.nFsyncs };
  }

  /**
   * Finish everything queued, fsync (durability "fsync"), close the file and release the directory. Later calls
   * reject with JournalClosedError. Idempotent. Rejects if the journal had failed.
   */
  close(): Promise<void> {
    if (this.closing) return this.closing;
    this.closing = new Promise<void>((resolve, reject) => {
      this.ops.push({ kind: "close", resolve, reject });
    });
    this.kick();
    return this.closing;
  }

  // ---------------------------------------------------------------------------------------

  private refuse(): Error | null {
    if (this.failed !== null) {
      return new JournalClosedError(`journal ${this.dir} failed earlier and accepts no more writes: ${errMsg(this.failed)}`, { cause: this.failed });
    }
    if (this.closing) return new JournalClosedError(`journal ${this.dir} is closed`);
    return null;
  }

  /** Queue a rotation if `size` more bytes would overflow a segment that already has records. */
  private maybeRotate(size: number): void {
    if (this.tailPos > HEADER_BYTES && this.tailPos + size > this.segmentBytes) {
      this.tailSeg++;
      this.tailPos = HEADER_BYTES;
      this.ops.push({ kind: "rotate", seg: this.tailSeg });
    }
  }

  /** The batch new frames go into: the last queued op if it is a batch still waiting. */
  private openBatch(extra: number): BatchOp {
    const lastOp = this.ops[this.ops.length - 1];
    let b: BatchOp;
    if (lastOp !== undefined && lastOp.kind === "batch") {
      b = lastOp;
    } else {
      b = {
        kind: "batch",
        seg: this.tailSeg,
        buf: Buffer.allocUnsafe(Math.max(INITIAL_BATCH_BYTES, extra)),
        used: 0,
        records: 0,
        openedAt: performance.now(),
        resolves: [],
        rejects: [],
        values: [],
      };
      this.ops.push(b);
    }
    if (b.used + extra > b.buf.length) {
      const nb = Buffer.allocUnsafe(Math.max(b.buf.length * 2, b.used + extra));
      b.buf.copy(nb, 0, 0, b.used);
      b.buf = nb;
    }
    return b;
  }

  private kick(): void {
    if (!this.running) {
      this.running = true;
      // Defer to a microtask so appends issued in the same synchronous run share a batch.
      queueMicrotask(() => void this.pump());
    }
  }

  private async pump(): Promise<void> {
    try {
      while (this.ops.length > 0) {
        const op = this.ops[0]!;
        if (op.kind === "batch" && this.delayMs > 0) {
          const wait = op.openedAt + this.delayMs - performance.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        }
        this.ops.shift();
        if (this.failed !== null) {
          this.rejectOp(op, this.refuse()!);
          continue;
        }
        try {
          await this.exec(op);
        } catch (e) {
          this.failed = e;
          if (op.kind === "close") await this.closeFinally();
          this.rejectOp(op, this.refuse()!);
        }
      }
    } finally {
      this.running = false;
    }
  }

  private rejectOp(op: Op, e: Error): void {
    if (op.kind === "batch") for (const rej of op.rejects) rej(e);
    else if (op.kind === "checkpoint" || op.kind === "close") {
      if (op.kind === "close") {
        void this.closeFinally().then(() => op.reject(e), () => op.reject(e));
      } else op.reject(e);
    }
  }

  private async exec(op: Op): Promise<void> {
    switch (op.kind) {
      case "batch": {
        if (op.seg !== this.fhSeg) throw internal(`journal: batch for segment ${op.seg} but writing ${this.fhSeg}`);
        await this.checkStillThere();
        await writeAll(this.fh, op.buf, op.used, this.writePos);
        this.writePos += op.used;
        this.segSizes.set(this.fhSeg, this.writePos);
        if (this.fsyncOn) {
          const t0 = performance.now();
          await this.fh.datasync();
          this.nFsyncs++;
          this.onFsync?.((performance.now() - t0) / 1000, op.records);
        }
        this.nAppends += op.records;
        const { resolves, values } = op;
        for (let i = 0; i < resolves.length; i++) resolves[i]!(values[i] as never);
        return;
      }
      case "rotate":
      case "checkpoint": {
        const isCp = op.kind === "checkpoint";
        // The old segment is already fsynced batch by batch (fsync mode).
        await this.fh.close();
        const fh = await createSegment(this.dir, op.seg, isCp ? op.buf : null, isCp ? op.records : 0, this.fsyncOn);
        if (this.fsyncOn) this.nFsyncs += 2;
        this.fh = fh;
        this.fhIno = -1;
        this.fhSeg = op.seg;
        this.writePos = HEADER_BYTES + (isCp ? op.buf.length : 0);
        this.segSizes.set(op.seg, this.writePos);
        if (isCp) {
          this.nAppends += op.records;
          if (op.dropOlder) this.nFsyncs += await dropSegmentsBefore(this.dir, op.seg, this.segSizes, this.fsyncOn);
          op.resolve();
        }
        return;
      }
      case "close": {
        if (this.fsyncOn) {
          await this.fh.sync();
          this.nFsyncs++;
        }
        await this.closeFinally();
        op.resolve();
        return;
      }
    }
  }

  /**
   * A journal folder deleted or replaced under the running server (a cleanup script, a
   * restore from backup) would let appends go on into a file no directory names any more:
   * acknowledged, and gone at the next start. So, at most once a second, before a batch is
   * written, the open segment's path must still name the open file; if not, the journal
   * stops with an error saying so (appends reject: clients see UNAVAILABLE). Records
   * acknowledged in the second before the check are the ones such a deletion can lose.
   */
  private async checkStillThere(): Promise<void> {
    const now = performance.now();
    if (now - this.checkedAt < STILL_THERE_CHECK_MS) return;
    this.checkedAt = now;
    if (this.fhIno < 0) this.fhIno = (await this.fh.stat()).ino;
    const name = join(this.dir, segmentName(this.fhSeg));
    const atPath = await stat(name).catch((e: NodeJS.ErrnoException) => (e.code === "ENOENT" ? null : Promise.reject(e)));
    if (atPath !== null && atPath.ino === this.fhIno) return;
    throw unavailable(
      `the journal folder ${this.dir} was deleted or replaced while the server ran (${atPath === null ? `${name} no longer exists` : `${name} is another file now`}): ` +
        `records written from here on would be lost at the next start, so the journal stops; restore the folder, or restart the server to start from what ${this.dir} holds now`,
    );
  }

  private closedFinally = false;
  private async closeFinally(): Promise<void> {
    if (this.closedFinally) return;
    this.closedFinally = true;
    await this.fh.close().catch(() => undefined);
    openDirs.delete(this.dir);
    await releaseLock(this.dir);
  }
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
