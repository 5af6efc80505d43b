/**
 * The journal's options and the shapes its API returns, with the checks an option must
 * pass before anything touches the disk (a typo in a server config fails here, not as an
 * odd fsync pattern later).
 */
import type { StoredRecord } from "./reader.js";

export const MIN_SEGMENT_BYTES = 4096;
export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

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

/** What recovery read (`Journal.open` returns it with the journal). */
export interface RecoveryResult {
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

/** Throws TypeError/RangeError naming the option. */
export function validateOptions(o: JournalOptions): void {
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

