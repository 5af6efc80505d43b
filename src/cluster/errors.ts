/**
 * Errors of the cluster layer. Each carries a stable cluster code (`clusterCode`) that
 * callers match on, and is a `MixflowError` whose status code says what a client should
 * do, so one that reaches the server edge (src/server/wrap.ts) becomes the right gRPC
 * status without the edge knowing about clusters. A cluster failure a client can get past
 * by retrying (later, or on another replica) is UNAVAILABLE, never INTERNAL, which clients
 * treat as permanent.
 *
 * - FENCED (UNAVAILABLE): this replica is not (or no longer) the run's leader; its commit
 *   was refused by etcd, or it stepped down. Nothing was written.
 * - LOG_AHEAD (UNAVAILABLE): the entry this replica tried to write exists already: its view
 *   of the log is behind; catch up from the watch and decide again.
 * - CONTENTION (UNAVAILABLE): a transaction lost to other replicas' frontier reservations
 *   many times in a row; nothing was written, the next try may win.
 * - ETCD_UNAVAILABLE (UNAVAILABLE): etcd refused the call or did not answer in time.
 * - RUN_EXISTS (ALREADY_EXISTS): a run of that id is in the catalog already (with another config).
 * - CORRUPT (DATA_LOSS): a key mixflow wrote in etcd (a log entry, a run's config) does not
 *   read back, or the log misses an entry in its middle. Retrying does not help.
 * - BAD_ENTRY (INTERNAL): mixflow itself asked for an entry that breaks the log's rules (a bug).
 * - BAD_SETTINGS (INVALID_ARGUMENT): a cluster flag or file is wrong (at startup).
 *
 * Messages name the run, key or file, never a value read from etcd or a file.
 */
import { MixflowError, type ErrorCode } from "../errors.js";

export type ClusterErrorCode = "FENCED" | "LOG_AHEAD" | "CONTENTION" | "ETCD_UNAVAILABLE" | "RUN_EXISTS" | "CORRUPT" | "BAD_ENTRY" | "BAD_SETTINGS";

const STATUS: Record<ClusterErrorCode, ErrorCode> = {
  FENCED: "UNAVAILABLE",
  LOG_AHEAD: "UNAVAILABLE",
  CONTENTION: "UNAVAILABLE",
  ETCD_UNAVAILABLE: "UNAVAILABLE",
  RUN_EXISTS: "ALREADY_EXISTS",
  CORRUPT: "DATA_LOSS",
  BAD_ENTRY: "INTERNAL",
  BAD_SETTINGS: "INVALID_ARGUMENT",
};

export class ClusterError extends MixflowError {
  readonly clusterCode: ClusterErrorCode;

  constructor(clusterCode: ClusterErrorCode, message: string, options?: { cause?: unknown }) {
    super(STATUS[clusterCode], message, options);
    this.name = "ClusterError";
    this.clusterCode = clusterCode;
  }
}

export const isClusterError = (e: unknown, code?: ClusterErrorCode): e is ClusterError =>
  e instanceof ClusterError && (code === undefined || e.clusterCode === code);

/**
 * A failed etcd call as a ClusterError: `e` itself if it is one already (the cluster
 * code says more), else ETCD_UNAVAILABLE saying what could not be done (`what`) and why
 * (the etcd client's message: a status, never a stored value).
 */
export function etcdFailure(what: string, e: unknown): ClusterError {
  if (e instanceof ClusterError) return e;
  const why = e instanceof Error ? e.message : String(e);
  return new ClusterError("ETCD_UNAVAILABLE", `${what}: etcd did not answer (${why}); retry, or use another replica`, { cause: e });
}
