/**
 * Serving's side of a run once a slice is admitted: the planned global batch of the step
 * (cached for the other ranks), the slice assembled from the train sources as a domain
 * `ServedBatch`, its payload hooked so the encoder's write also records the slice's content
 * digest, and the step's record for its Aggregated event (batch digest, content digests).
 * Admission (may this step be served yet?) and eval probes are the caller's; this room
 * only builds what a served step is.
 */
import { BatchPlanner, type GlobalBatch } from "../sampling/index.js";
import { ContentLedger, type Source } from "../sources/index.js";
import type { StepContent } from "../history/events.js";
import { assembleSlice } from "./assemble.js";
import { PlanCache, digestHex } from "./plans.js";
import type { EvalProbe, ServedBatch } from "./served.js";
import type { SliceGeometry } from "./slice.js";

export class Serving {
  private readonly plans: PlanCache;
  /** Payload digests of served slices until their step is aggregated (issue 12; src/sources/content-digest.ts). */
  private readonly contents: ContentLedger;

  constructor(
    private readonly runId: string,
    planner: BatchPlanner,
    /** The domains' train sources, in domain order (batch assembly's lookup table). */
    private readonly train: readonly Source[],
  ) {
    this.plans = new PlanCache(planner);
    this.contents = new ContentLedger(train.length);
  }

  /** The planned global batch of a step (cached for the other ranks). */
  globalBatch(step: number): GlobalBatch {
    return this.plans.get(step);
  }

  /** A version was applied: plans made before it are stale. */
  versionApplied(): void {
    this.plans.clear();
  }

  get planCacheSize(): number {
    return this.plans.size;
  }

  /** The batch of an admitted slice — identical bytes however often and in whatever order it is asked. */
  batch(s: SliceGeometry, probes: readonly EvalProbe[] | null): ServedBatch {
    const { step, offset, slots } = s;
    const g = this.globalBatch(step);
    const a = assembleSlice(g, offset, slots, this.train);
    return {
      runId: this.runId,
      step,
      rank: s.rank,
      worldSize: s.worldSize,
      version: g.version,
      offset,
      slots,
      slice: { ...a, payload: { ...a.payload, data: this.contents.wrap(g, step, offset, slots, a.payload) } },
      digest: digestHex(g),
      eval: probes,
    };
  }

  /** What a step's Aggregated record says of what was served: the batch digest and, if served here, the content digests (taken). */
  stepRecord(step: number): { digest: string; content?: StepContent } {
    const digest = digestHex(this.globalBatch(step));
    const content = this.contents.take(step);
    return { digest, ...(content && { content }) };
  }
}
