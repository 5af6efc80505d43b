/**
 * Offline inspection and repair, behind `mixflow journal check` / `mixflow journal repair`.
 *
 * check reads every segment (history included) without modifying anything. repair drops a
 * bad record in the middle of a live segment (resynchronising at the next frame whose CRC,
 * which covers its length, checks out) and cuts torn or unreadable ends: it never deletes
 * data outright but renames or copies everything it changes to `<file>.bak-<timestamp>`
 * first, so an operator can undo it, and it lists exactly which byte ranges it dropped.
 */
import { copyFile, open as openFile, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { FRAME_HEADER_BYTES, HEADER_BYTES, JournalLockedError, segmentName } from "./format.js";
import { internal, precondition } from "../errors.js";
import { lockedBy } from "./lock.js";
import { fsyncDir } from "./segments.js";
import { listSegments, scanSegment, type ScanProblem } from "./reader.js";

export interface SegmentCheck {
  segment: string;
  number: number;
  /** File size. */
  bytes: number;
  /** Bytes up to the end of the last valid record. */
  validBytes: number;
  checkpoint: boolean;
  snapshotRecords: number;
  /** Valid records (up to the first problem in this segment). */
  records: number;
  recordsByType: Record<number, number>;
  /** Whether recovery reads this segment (newest checkpoint onward); false for history. */
  live: boolean;
}

export interface CheckProblem extends ScanProblem {
  /**
   * `gap`: a segment in the middle is missing; `missing-start`: the journal has no checkpoint
   * and does not start at segment 1. Absent for problems inside a segment.
   */
  code?: "gap" | "missing-start";
}

export interface CheckReport {
  dir: string;
  /** `ok`; `torn-tail` (open will drop it with a warning); `corrupt` (open throws until repaired). */
  status: "ok" | "torn-tail" | "corrupt";
  segments: SegmentCheck[];
  records: number;
  recordsByType: Record<number, number>;
  /** The first problem in segment order, or null. */
  problem: CheckProblem | null;
  problems: CheckProblem[];
  /** Leftover `*.seg.tmp` files (open deletes them). */
  tmpFiles: string[];
}

/** Scan every segment in `dir` and report counts and problems. Never modifies anything. */
export async function checkJournal(dir: string): Promise<CheckReport> {
  const listing = await listSegments(dir);
  const segments: SegmentCheck[] = [];
  const problems: CheckProblem[] = [];
  const byType: Record<number, number> = {};
  let total = 0;
  const last = listing.numbers[listing.numbers.length - 1];
  for (let i = 0; i < listing.numbers.length; i++) {
    const num = listing.numbers[i]!;
    const prev = listing.numbers[i - 1];
    if (prev !== undefined && num !== prev + 1) {
      problems.push({
        kind: "corrupt",
        code: "gap",
        segment: segmentName(num),
        offset: 0,
        reason: `segment(s) missing between ${segmentName(prev)} and ${segmentName(num)}`,
      });
    }
    const counts: Record<number, number> = {};
    const res = await scanSegment(dir, num, num === last, (r) => {
      counts[r.type] = (counts[r.type] ?? 0) + 1;
    });
    for (const [k, v] of Object.entries(counts)) byType[Number(k)] = (byType[Number(k)] ?? 0) + v;
    total += res.records;
    segments.push({
      segment: res.name,
      number: num,
      bytes: res.size,
      validBytes: res.validEnd,
      checkpoint: res.header?.checkpoint ?? false,
      snapshotRecords: res.header?.snapshotRecords ?? 0,
      records: res.records,
      recordsByType: counts,
      live: false,
    });
    if (res.problem) problems.push(res.problem);
  }
  let start = 0;
  for (let i = segments.length - 1; i >= 0; i--) {
    if (segments[i]!.checkpoint) {
      start = i;
      break;
    }
  }
  for (let i = start; i < segments.length; i++) segments[i]!.live = true;
  const first = segments[start];
  if (first !== undefined && !first.checkpoint && first.number !== 1) {
    problems.unshift({
      kind: "corrupt",
      code: "missing-start",
      segment: first.segment,
      offset: 0,
      reason: `the journal has no checkpoint, so it must start at ${segmentName(1)}, but the oldest segment is ${first.segment}`,
    });
  }
  const status = problems.some((p) => p.kind === "corrupt") ? "corrupt" : problems.length > 0 ? "torn-tail" : "ok";
  return { dir, status, segments, records: total, recordsByType: byType, problem: problems[0] ?? null, problems, tmpFiles: listing.tmp };
}

export interface RepairReport {
  dir: string;
  /** False if the journal was already clean. */
  changed: boolean;
  /** What was done, one line per action, in order. */
  actions: string[];
  /** Backup files created (full paths). */
  backups: string[];
  truncated: { segment: string; offset: number; bytesRemoved: number }[];
  /**
   * Bad records cut out of the middle of a segment, everything after them kept: the frame
   * at `offset` and the bytes up to the next valid frame (`bytes`; `records` is 1 when the
   * next valid frame sits where the bad frame's own length says it ends).
   */
  dropped: { segment: string; offset: number; bytes: number; records: number; reason: string }[];
  /** Segments moved into backups (no longer part of the journal). */
  removedSegments: string[];
  before: CheckReport;
  after: CheckReport;
}

/**
 * Make the journal openable again, first problem first:
 * - a bad record followed by valid ones inside a live segment: the segment is copied to
 *   `<segment>.bak-<ts>` and rewritten without the bad record's bytes (listed in `dropped`);
 *   every record before and after it is kept;
 * - any other problem inside a live segment (read by recovery): that segment is copied to
 *   `<segment>.bak-<ts>` and truncated at the last good record; every later segment is
 *   renamed to `<segment>.bak-<ts>` (removed from the journal, kept on disk);
 * - a bad header or a gap: that segment and all later ones are moved to backups;
 * - a problem in history (segments before the newest checkpoint, kept by dropOlder: false):
 *   the damaged segment and all older ones are moved to backups, so the history that remains
 *   is an intact run of segments leading up to the checkpoint, and live state is untouched;
 * - leftover `.tmp` files are moved to backups.
 * Repeats until check reports no corruption. Refuses while a live process has the journal
 * open, and refuses a journal whose start is missing (cutting would discard everything).
 */
export async function repairJournal(dir: string): Promise<RepairReport> {
  const owner = await lockedBy(dir);
  if (owner !== null) throw new JournalLockedError(`journal ${dir} is open by process ${owner}; stop it before repairing`);
  const ts = new Date().toISOString().replace(/[:.]/g, "-");
  const before = await checkJournal(dir);
  const actions: string[] = [];
  const backups: string[] = [];
  const truncated: RepairReport["truncated"] = [];
  const dropped: RepairReport["dropped"] = [];
  const removed: string[] = [];

  const moveToBackup = async (name: string): Promise<void> => {
    const bak = join(dir, `${name}.bak-${ts}`);
    await rename(join(dir, name), bak);
    backups.push(bak);
    actions.push(`moved ${name} to ${bak}`);
  };

  for (const t of before.tmpFiles) await moveToBackup(t);

  let report = before;
  for (let guard = 0; report.problem !== null; guard++) {
    if (guard > 10_000) throw internal("journal repair did not converge");
    const p = report.problem;
    if (p.code === "missing-start") {
      throw precondition(
        `cannot repair ${dir}: ${p.reason}. Cutting there would discard the whole journal; restore the missing segments from a backup, or move the journal aside to start fresh`,
      );
    }
    const idx = report.segments.findIndex((s) => s.segment === p.segment);
    const seg = report.segments[idx]!;
    if (!seg.live) {
      for (const s of report.segments.slice(0, idx + 1)) {
        await moveToBackup(s.segment);
        removed.push(s.segment);
      }
    } else {
      if (p.resumeAt !== undefined && p.code === undefined && p.offset >= HEADER_BYTES) {
        const file = join(dir, p.segment);
        const bak = `${file}.bak-${ts}-${dropped.length}`;
        await copyFile(file, bak);
        await syncFile(bak);
        backups.push(bak);
        actions.push(`copied ${p.segment} to ${bak}`);
        const bytes = await readFile(file);
        const declared = FRAME_HEADER_BYTES + bytes.readUInt32LE(p.offset);
        const records = p.resumeAt - p.offset === declared ? 1 : 0;
        const tmp = `${file}.repair`;
        await writeFile(tmp, Buffer.concat([bytes.subarray(0, p.offset), bytes.subarray(p.resumeAt)]));
        await syncFile(tmp);
        await rename(tmp, file);
        dropped.push({ segment: p.segment, offset: p.offset, bytes: p.resumeAt - p.offset, records, reason: p.reason });
        actions.push(
          `dropped ${records === 1 ? "1 record" : "a damaged range (one record or more)"} at ${p.segment} offset ${p.offset} (${p.resumeAt - p.offset} bytes): ${p.reason}; the records after it are kept`,
        );
        await fsyncDir(dir);
        report = await checkJournal(dir);
        continue;
      }
      if (p.offset >= HEADER_BYTES && p.code === undefined) {
        const bak = join(dir, `${p.segment}.bak-${ts}`);
        await copyFile(join(dir, p.segment), bak);
        await syncFile(bak);
        backups.push(bak);
        actions.push(`copied ${p.segment} to ${bak}`);
        const fh = await openFile(join(dir, p.segment), "r+");
        try {
          await fh.truncate(p.offset);
          await fh.sync();
        } finally {
          await fh.close();
        }
        truncated.push({ segment: p.segment, offset: p.offset, bytesRemoved: seg.bytes - p.offset });
        actions.push(`truncated ${p.segment} at offset ${p.offset} (${seg.bytes - p.offset} bytes removed): ${p.reason}`);
      } else {
        await moveToBackup(p.segment);
        removed.push(p.segment);
      }
      for (const s of report.segments.slice(idx + 1)) {
        await moveToBackup(s.segment);
        removed.push(s.segment);
      }
    }
    await fsyncDir(dir);
    report = await checkJournal(dir);
  }
  if (backups.length > 0) await fsyncDir(dir);
  return { dir, changed: actions.length > 0, actions, backups, truncated, dropped, removedSegments: removed, before, after: report };
}

async function syncFile(p: string): Promise<void> {
  const fh = await openFile(p, "r+");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
