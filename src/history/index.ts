/**
 * A run's history: the event schema of the journal (one `Version` record), where the
 * journal lives, and the one streaming reading of it (snapshot-pending resolved once) that
 * recovery (src/runs/registry.ts), offline replay (src/replay) and the report
 * (src/report/collect.ts) share.
 */
export * from "./events.js";
export { resolveJournalDir, serverJournalDir } from "./journal-dir.js";
export { HistoryResolver, resolveRecords, scanHistory } from "./scan.js";
