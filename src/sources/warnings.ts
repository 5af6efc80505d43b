/**
 * Warnings from the data layer (a damaged cache entry rebuilt, a file changed under the same
 * size and modification time) reach the server's log from wherever the source was opened:
 * the serving thread, or a worker thread preparing a run (src/workers forwards them to the
 * serving thread). One process-wide sink, set by the server to its logger; without a server
 * (offline tools) they go to stderr as one JSON line.
 */
export type SourceWarningSink = (msg: string, fields: Record<string, unknown>) => void;

let sink: SourceWarningSink = (msg, fields) => process.stderr.write(JSON.stringify({ level: "warn", msg, ...fields }) + "\n");

/** Route data-layer warnings (the server: to its logger; a worker thread: to its parent). */
export function setSourceWarningSink(s: SourceWarningSink): void {
  sink = s;
}

/** Report a data-layer warning; `fields.file` names the file, `fields.detail` says what was done. */
export function sourceWarning(msg: string, fields: Record<string, unknown>): void {
  sink(msg, fields);
}
