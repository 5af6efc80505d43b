/**
 * Where a run lives in etcd (under the cluster's key prefix). One place, so the layout
 * is read in one file:
 *
 *   <prefix>runs/<run>/config        the run's config (JSON), written once at creation
 *   <prefix>runs/<run>/closed        present once the run is closed
 *   <prefix>runs/<run>/log/<seq>     committed log entry `seq` (1, 2, …; 12 digits so
 *                                    keys sort in log order), immutable
 *   <prefix>runs/<run>/frontier      highest step any replica may have served (reserved
 *                                    before serving; only grows)
 *   <prefix>runs/<run>/election/leader/<lease>   the run's leader election (etcd3
 *                                    Election: one key per candidate, the oldest leads;
 *                                    its value is the candidate's JSON announcement)
 *
 * Run ids are letters, digits, '.', '_' and '-' (config schema), so they need no escaping.
 */
const SEQ_DIGITS = 12;

export class RunKeys {
  readonly base: string;

  constructor(prefix: string, runId: string) {
    this.base = `${prefix}runs/${runId}/`;
  }

  get config(): string {
    return `${this.base}config`;
  }

  get closed(): string {
    return `${this.base}closed`;
  }

  get logPrefix(): string {
    return `${this.base}log/`;
  }

  /** The end (exclusive) of the log's key range: "log0" follows every "log/…" key. */
  get logEnd(): string {
    return `${this.base}log0`;
  }

  entry(seq: number): string {
    return `${this.logPrefix}${String(seq).padStart(SEQ_DIGITS, "0")}`;
  }

  /** The sequence number in a log key (NaN if it is not one). */
  seqOf(key: string): number {
    if (!key.startsWith(this.logPrefix)) return Number.NaN;
    const s = key.slice(this.logPrefix.length);
    return /^\d+$/.test(s) ? Number(s) : Number.NaN;
  }

  get frontier(): string {
    return `${this.base}frontier`;
  }

}

/** Prefix of every run's keys (the catalog watches it). */
export function runsPrefix(prefix: string): string {
  return `${prefix}runs/`;
}
