/**
 * mixflow's journal storage engine: an append-only, checksummed, segmented log with group
 * commit, checkpoints and offline check/repair. It stores opaque typed records; what they
 * mean (run created, signal, version) is the run state machine's business.
 *
 * Contract the rest of the server relies on (DESIGN.md, determinism points 3 and 5, and
 * "Failure and bad input"):
 * - `append`/`appendMany` resolve only when the record is durable (durability "fsync"), so a
 *   signal may be acknowledged and a version served right after the promise resolves, and a
 *   kill -9 at any instant loses nothing that was acknowledged.
 * - Records come back from `Journal.open` in exactly the order their append calls were made.
 * - Recovery never skips a bad record silently: only a torn tail at the very end of the
 *   newest segment (what a crash mid-write leaves) is dropped, with a warning; anything else
 *   throws JournalCorruptError naming the segment file and byte offset.
 *
 * API:
 *   Journal.open(opts: JournalOptions): Promise<{ journal, records: StoredRecord[], warnings: string[], checkpoint }>
 *   Journal.scan(dir, { from?: "checkpoint" | "all", onWarning? }): AsyncGenerator<StoredRecord>
 *   journal.append(type: number, payload: Uint8Array): Promise<RecordRef>
 *   journal.appendMany(recs: { type, payload }[]): Promise<RecordRef[]>
 *   journal.checkpoint(snapshot: { type, payload }[], opts?: { dropOlder: boolean }): Promise<void>
 *   journal.stats(): { segments, bytes, appends, fsyncs }
 *   journal.close(): Promise<void>
 *   checkJournal(dir): Promise<CheckReport>
 *   repairJournal(dir): Promise<RepairReport>
 *
 * On-disk format: see ./format.ts and docs/journal.md.
 */
export { Journal } from "./journal.js";
export type { Durability, JournalOptions, JournalStats, OpenResult, RecordRef, ScanOptions } from "./journal.js";
export type { StoredRecord, ScanProblem } from "./reader.js";
export { checkJournal, repairJournal } from "./check.js";
export type { CheckReport, CheckProblem, RepairReport, SegmentCheck } from "./check.js";
export { JournalClosedError, JournalCorruptError, JournalLockedError, MAX_RECORD_BYTES } from "./format.js";
export { crc32c } from "./crc32c.js";
