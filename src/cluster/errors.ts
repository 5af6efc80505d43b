/**
 * Errors of the cluster layer, each with a stable code callers match on.
 *
 * - FENCED: this replica is not (or no longer) the run's leader; its commit was refused by
 *   etcd, or it stepped down. Nothing was written.
 * - LOG_AHEAD: the entry this replica tried to write exists already: its view of the log is
 *   behind; catch up from the watch and decide again.
 * - RUN_EXISTS: a run of that id is in the catalog already (with another config).
 */
export type ClusterErrorCode = "FENCED" | "LOG_AHEAD" | "RUN_EXISTS";

export class ClusterError extends Error {
  readonly code: ClusterErrorCode;

  constructor(code: ClusterErrorCode, message: string) {
    super(message);
    this.name = "ClusterError";
    this.code = code;
  }
}

export const isClusterError = (e: unknown, code?: ClusterErrorCode): e is ClusterError =>
  e instanceof ClusterError && (code === undefined || e.code === code);
