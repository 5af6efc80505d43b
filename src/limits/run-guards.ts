/**
 * Per-run limits enforced at the gRPC edge: reports per second (token bucket) and the
 * number of distinct ranks a run serves. State is one small record per run, created on
 * the first call that named an existing run, so its size is bounded by limits.maxRuns.
 */
import { MixflowError } from "../errors.js";
import { TokenBucket } from "./token-bucket.js";

export interface RunLimits {
  readonly reportsPerSecond: number;
  readonly reportBurst?: number | undefined;
  readonly maxRanksPerRun: number;
}

interface Guard {
  readonly bucket: TokenBucket;
  /** "worldSize:rank" pairs seen; at most maxRanksPerRun entries. */
  readonly ranks: Set<string>;
}

export class RunGuards {
  private readonly limits: RunLimits;
  private readonly now: () => number;
  private readonly guards = new Map<string, Guard>();

  constructor(limits: RunLimits, now: () => number = () => performance.now()) {
    this.limits = limits;
    this.now = now;
  }

  private guard(runId: string): Guard {
    let g = this.guards.get(runId);
    if (!g) {
      const burst = this.limits.reportBurst ?? Math.max(1, Math.ceil(this.limits.reportsPerSecond));
      g = { bucket: new TokenBucket(this.limits.reportsPerSecond, burst, this.now()), ranks: new Set() };
      this.guards.set(runId, g);
    }
    return g;
  }

  /** RESOURCE_EXHAUSTED when the run is over its report rate. */
  takeReport(runId: string): void {
    const g = this.guard(runId);
    if (!g.bucket.take(this.now())) {
      throw new MixflowError(
        "RESOURCE_EXHAUSTED",
        `run "${runId}" is over its report rate (limits.reportsPerSecond = ${g.bucket.rate}, burst ${g.bucket.burst}); retry with backoff, or raise limits.reportsPerSecond / limits.reportBurst in the server config`,
      );
    }
  }

  /** Record that (worldSize, rank) was used on the run; RESOURCE_EXHAUSTED past the limit. */
  seeRank(runId: string, worldSize: number, rank: number): void {
    const g = this.guard(runId);
    const key = `${worldSize}:${rank}`;
    if (g.ranks.has(key)) return;
    if (g.ranks.size >= this.limits.maxRanksPerRun) {
      throw new MixflowError(
        "RESOURCE_EXHAUSTED",
        `run "${runId}" already serves ${g.ranks.size} distinct ranks (limits.maxRanksPerRun); use one world size per run, or raise limits.maxRanksPerRun in the server config`,
      );
    }
    g.ranks.add(key);
  }

  /** Distinct ranks seen on a run (0 if none). */
  ranksSeen(runId: string): number {
    return this.guards.get(runId)?.ranks.size ?? 0;
  }

  /** Runs with limiter state (for memory checks). */
  get size(): number {
    return this.guards.size;
  }
}
