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
import { mkdir, open as openFile, readFile, rename, stat, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { dirname, join, resolve as resolvePath } from "node:path";
import {
  HEADER_BYTES,
  JournalClosedError,
  JournalCorruptError,
  JournalLockedError,
  checkRecord,
  encodeFrame,
  encodeHeader,
  frameBytes,
  segmentName,
} from "./format.js";
import { listSegments, readSegmentHeader, scanSegment, type StoredRecord } from "./reader.js";

/**
 * `fsync`: every append resolves only after its bytes are on stable storage (fdatasync), and
 * new file names are made durable by fsyncing the directory. `none`: FOR TESTS AND BENCHMARKS
 * ONLY: no fsync at all, not even at close; appends resolve after write(); a power
 * failure or kernel crash may lose acknowledged records (a process crash does not).
 */
export type Durability = "fsync" | "none";

export interface JournalOptions {
  /** Directory holding the segments; created if missing. One journal per directory. */
  dir: string;
  /** Default "fsync". See {@link Durability}. */
  durability?: Durability;
  /**
   * Rotate to a new segment once the current one would grow past this many bytes. Default
   * 64 MiB; minimum 4096. A single record or appendMany batch larger than this still goes
   * into one segment (segments are never split mid-batch).
   */
  segmentBytes?: number;
  /**
   * How long a batch may wait for more appends before it is written. Default 0: write and
   * fsync as soon as the previous fsync finished (appends arriving meanwhile still share the
   * next fsync). A few ms trades latency for fewer fsyncs when appenders are sparse.
   */
  groupCommitMaxDelayMs?: number;
  /**
   * Streaming recovery: when given, `open` calls this for each recovered record, in order,
   * and returns an empty `records` array, so a huge journal is never held in memory at once.
   */
  onRecord?: (r: StoredRecord) => void;
  /** Called after each data fsync with its latency and how many records it made durable (metrics). */
  onFsync?: (seconds: number, records: number) => void;
}

/** Where a record was written. */
export interface RecordRef {
  segment: string;
  offset: number;
}

export interface JournalStats {
  /** Segment files currently in the directory (including history kept by dropOlder: false). */
  segments: number;
  /** Total bytes of those segment files. */
  bytes: number;
  /** Records written by this Journal instance (appends and snapshot records). */
  appends: number;
  /** fsync/fdatasync calls made by this instance, on files and on the directory. */
  fsyncs: number;
}

export interface OpenResult {
  journal: Journal;
  /** Records from the newest checkpoint onward (all records if there is none); [] with onRecord. */
  records: StoredRecord[];
  /** Human-readable notes about what recovery did (torn tail dropped, leftover temp file removed). */
  warnings: string[];
  /** The checkpoint recovery started from, or null if it read from the first segment. */
  checkpoint: { segment: string; snapshotRecords: number } | null;
}

export interface ScanOptions {
  /** "checkpoint" (default): read what `open` would, from the newest checkpoint. "all": every segment. */
  from?: "checkpoint" | "all";
  /** Receives the torn-tail warning, if any (scan never modifies files). */
  onWarning?: (w: string) => void;
}

type Resolver = (v: never) => void;

interface BatchOp {
  kind: "batch";
  seg: number;
  buf: Buffer;
  used: number;
  records: number;
  openedAt: number;
  resolves: Resolver[];
  rejects: ((e: unknown) => void)[];
  values: unknown[];
}
interface RotateOp {
  kind: "rotate";
  seg: number;
}
interface CheckpointOp {
  kind: "checkpoint";
  seg: number;
  buf: Buffer;
  records: number;
  dropOlder: boolean;
  resolve: () => void;
  reject: (e: unknown) => void;
}
interface CloseOp {
  kind: "close";
  resolve: () => void;
  reject: (e: unknown) => void;
}
type Op = BatchOp | RotateOp | CheckpointOp | CloseOp;

const LOCK_FILE = "journal.lock";
const MIN_SEGMENT_BYTES = 4096;
const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
const INITIAL_BATCH_BYTES = 64 * 1024;
/** How often (at most) a write checks that the journal folder is still the one it opened. */
const STILL_THERE_CHECK_MS = 1000;

/** Directories opened by a Journal in this process (the pid lock cannot see those). */
const openDirs = new Set<string>();

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
      const j = new Journal(dir, opts, fh, 1, HEADER_BYTES, sizes);
      if (fsyncOn) j.nFsyncs += 2;
      return { journal: j, records: [], warnings, checkpoint: null };
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
    const j = new Journal(dir, opts, fh, last, lastEnd, sizes);
    return {
      journal: j,
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
  static async *scan(dir: string, opts: ScanOptions = {}): AsyncGenerator<StoredRecord, void, undefined> {
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
        if (op.seg !== this.fhSeg) throw new Error(`internal: batch for segment ${op.seg} but writing ${this.fhSeg}`);
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
          if (op.dropOlder) {
            const older = [...this.segSizes.keys()].filter((n) => n < op.seg);
            // Also anything on disk we did not know about (e.g. history from before open).
            const listing = await listSegments(this.dir);
            for (const n of listing.numbers) if (n < op.seg && !older.includes(n)) older.push(n);
            for (const n of older) {
              await unlink(join(this.dir, segmentName(n))).catch((e: NodeJS.ErrnoException) => {
                if (e.code !== "ENOENT") throw e;
              });
              this.segSizes.delete(n);
            }
            if (this.fsyncOn && older.length > 0) {
              await fsyncDir(this.dir);
              this.nFsyncs++;
            }
          }
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
    throw new Error(
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

// -----------------------------------------------------------------------------------------

function validateOptions(o: JournalOptions): void {
  if (typeof o.dir !== "string" || o.dir.length === 0) throw new TypeError("journal dir must be a non-empty path");
  if (o.durability !== undefined && o.durability !== "fsync" && o.durability !== "none") {
    throw new RangeError(`journal durability must be "fsync" or "none", got ${String(o.durability)}`);
  }
  if (o.segmentBytes !== undefined && (!Number.isSafeInteger(o.segmentBytes) || o.segmentBytes < MIN_SEGMENT_BYTES)) {
    throw new RangeError(`journal segmentBytes must be an integer >= ${MIN_SEGMENT_BYTES}, got ${o.segmentBytes}`);
  }
  const d = o.groupCommitMaxDelayMs;
  if (d !== undefined && (!Number.isFinite(d) || d < 0)) {
    throw new RangeError(`journal groupCommitMaxDelayMs must be a finite number >= 0, got ${d}`);
  }
}

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

function checkContiguous(numbers: readonly number[]): void {
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
async function createSegment(dir: string, num: number, snapshot: Buffer | null, snapshotRecords: number, fsyncOn: boolean): Promise<FileHandle> {
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

async function writeAll(fh: FileHandle, buf: Buffer, len: number, pos: number): Promise<void> {
  let off = 0;
  while (off < len) {
    const { bytesWritten } = await fh.write(buf, off, len - off, pos + off);
    if (bytesWritten <= 0) throw new Error(`short write to journal (${off} of ${len} bytes)`);
    off += bytesWritten;
  }
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

async function fileSize(p: string): Promise<number> {
  const fh = await openFile(p, "r");
  try {
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

function errMsg(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Advisory lock: `journal.lock` holds the owner's pid. A lock whose pid is no longer alive
 * (the owner crashed) is taken over. This guards against two servers writing one journal,
 * which would interleave frames and corrupt it.
 */
async function acquireLock(dir: string): Promise<void> {
  const p = join(dir, LOCK_FILE);
  try {
    await writeFile(p, `${process.pid}\n`, { flag: "wx" });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const pid = Number((await readFile(p, "utf8").catch(() => "")).trim());
  if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
    throw new JournalLockedError(`journal ${dir} is in use by process ${pid} (${p}); stop it first`);
  }
  await writeFile(p, `${process.pid}\n`);
}

async function releaseLock(dir: string): Promise<void> {
  await unlink(join(dir, LOCK_FILE)).catch(() => undefined);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Is the directory locked by another live process? (For repair, which must not race a writer.) */
export async function lockedBy(dir: string): Promise<number | null> {
  if (openDirs.has(resolvePath(dir))) return process.pid;
  const pid = Number((await readFile(join(dir, LOCK_FILE), "utf8").catch(() => "")).trim());
  return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid) ? pid : null;
}
