/**
 * A run's history read from a journal directory alone (no server): its config, its
 * versions, the signals it received and how they were aggregated. Every replay command
 * starts here. Accepts the server's data dir or its `journal/` folder. Read through
 * src/history's scan, so a compacted journal's snapshot-pending slices are signals too.
 */
import type { SplitFingerprint } from "../sources/index.js";
import * as fs from "node:fs";
import * as path from "node:path";
import type { StoredRecord } from "../journal/index.js";
import type { RunConfig } from "../config/schema.js";
import { EventType, resolveJournalDir, scanHistory, type AggregatedEvent, type SignalsEvent, type Version, type VersionEvent } from "../history/index.js";
import { BatchPlanner } from "../sampling/index.js";
import { notFound } from "../errors.js";
import { progress } from "../util/progress.js";
import type { DomainInfo } from "../../strategies/types.js";


export interface RunHistory {
  runId: string;
  config: RunConfig;
  /** What the strategy knew about each domain (from the creation record). */
  domains: DomainInfo[] | null;
  /** Data fingerprints from the creation record (null: journaled before they existed). */
  data: SplitFingerprint[] | null;
  versions: Version[];
  /** Accepted reports in journal order. */
  signals: SignalsEvent[];
  /** Aggregations in order. */
  aggregated: AggregatedEvent[];
  /** Highest leased step bound (steps below it may have been served). */
  leasedUpTo: number;
  closed: boolean;
  /** True when the history starts at a snapshot (earlier records were compacted away). */
  fromSnapshot: boolean;
}

/** Read one run's history (NOT_FOUND naming the runs present if it is not there). */
export async function readHistory(dir: string, runId: string): Promise<RunHistory> {
  const all = await readHistories(dir, runId);
  const h = all.get(runId);
  if (!h) {
    throw notFound(`run "${runId}" is not in the journal at ${resolveJournalDir(dir)} (runs: ${[...all.keys()].join(", ") || "none"})`);
  }
  return h;
}

/** Read every run's history (or only `only`'s, skipping the rest's signals). */
export async function readHistories(dir: string, only?: string): Promise<Map<string, RunHistory>> {
  const jdir = resolveJournalDir(dir);
  const total = fs.readdirSync(jdir).filter((f) => f.endsWith(".seg")).reduce((a, f) => a + fs.statSync(path.join(jdir, f)).size, 0);
  const prog = progress(`reading journal ${jdir}`);
  const runs = new Map<string, RunHistory>();
  let bytes = 0;
  const onRecord = (r: StoredRecord): void => {
    bytes += r.payload.length + 9;
    prog.update(bytes, total);
  };
  for await (const e of scanHistory(jdir, { from: "all", onRecord })) {
    const id = e.body.runId;
    if (only !== undefined && id !== only) continue;
    switch (e.type) {
      case EventType.RunCreated:
        runs.set(id, {
          runId: id,
          config: e.body.config,
          domains: e.body.domains ?? null,
          data: e.body.data ?? null,
          versions: [],
          signals: [],
          aggregated: [],
          leasedUpTo: 0,
          closed: false,
          fromSnapshot: false,
        });
        break;
      case EventType.Snapshot: {
        let h = runs.get(id);
        if (!h) {
          h = {
            runId: id,
            config: e.body.config,
            domains: e.body.domains ?? null,
          data: e.body.data ?? null,
            versions: e.body.versions.map((v) => ({ ...v })),
            signals: [],
            aggregated: [],
            leasedUpTo: e.body.leasedUpTo,
            closed: e.body.state === "closed",
            fromSnapshot: true,
          };
          runs.set(id, h);
        }
        break;
      }
      case EventType.Version:
        runs.get(id)?.versions.push(versionOf(e.body));
        break;
      case EventType.Signals:
        runs.get(id)?.signals.push(e.body);
        break;
      case EventType.Aggregated:
        runs.get(id)?.aggregated.push(e.body);
        break;
      case EventType.Lease: {
        const h = runs.get(id);
        if (h) h.leasedUpTo = Math.max(h.leasedUpTo, e.body.upTo);
        break;
      }
      case EventType.RunClosed: {
        const h = runs.get(id);
        if (h) h.closed = true;
        break;
      }
    }
  }
  prog.done();
  return runs;
}

function versionOf(v: VersionEvent): Version {
  return {
    version: v.version,
    fromStep: v.fromStep,
    weights: v.weights,
    competence: v.competence,
    reason: v.reason,
    committedAtStep: v.committedAtStep,
  };
}

/** The last step the run is known to have reached (highest reported or aggregated step). */
export function lastStep(h: RunHistory): number {
  let last = -1;
  for (const s of h.signals) last = Math.max(last, s.step);
  for (const a of h.aggregated) last = Math.max(last, a.step);
  return last;
}

/**
 * A planner rebuilt from the history: the same batches the server served. Needs the data
 * only when a domain uses a difficulty order (curriculum) — pass `difficultyOrders` then.
 */
export function plannerFor(h: RunHistory, difficultyOrders?: (Uint32Array | null)[]): BatchPlanner {
  if (!h.domains) {
    throw notFound(`run "${h.runId}": the journal does not record the domains' sizes (written by an older mixflow); cannot plan offline`);
  }
  const planner = new BatchPlanner(
    h.config.seed,
    h.config.batchSize,
    h.domains.map((d, i) => ({ size: d.trainSamples, difficultyOrder: difficultyOrders?.[i] ?? null })),
  );
  for (const v of h.versions) planner.addVersion(v);
  return planner;
}

