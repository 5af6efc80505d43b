/**
 * Exact integer per-step domain counts with random access, by hierarchical apportionment.
 *
 * The domains are the leaves of a fixed balanced binary tree. Every node has a cumulative
 * unit count n(s) (slots it received in steps [0, s)); the root's is exactly B·s. A node
 * splits its units between its children by rounding the left child's *true* cumulative
 * target, corrected by the node's own rounding error shared in proportion:
 *
 *     L(s) = clamp( floor( τ_L(s) + p·(n(s) − τ(s)) + ½ ),  L(f),  L(f) + n(s) − n(f) )
 *
 * where τ are the exact piecewise-linear cumulative targets (B · Σ weight over steps),
 * p = W_L / W the left share under the version in force, and f that version's from_step.
 * Within a version the rounded term grows by p·Δn ≥ 0 per step, and the clamp keeps the
 * split monotone across version boundaries, so both children's counts never decrease:
 * per-step counts A(s+1) − A(s) are non-negative integers summing to B.
 *
 * Why not simpler: largest-remainder rounding of cumulative targets is stateless but not
 * monotone (the Alabama paradox gives −1 counts for small domains), and carried-error
 * rounding is monotone but needs the whole history to reach step s. Here the only state
 * is one snapshot of the tree per version (n, L, τ at from_step), so step s costs
 * O(min(B, K) · log K) whatever s is. The error |A_d(s) − T_d(s)| is bounded by the sum
 * of ½-roundings along the leaf's path, each damped by the shares below it; measured
 * under adversarial random versions it stays below 2 (docs/sampling.md), and below 1.5
 * for static weights.
 */
import { lastAtOrBelow } from "../util/search.js";
import { internal } from "../errors.js";
import type { Version } from "../history/events.js";

/** A weights version as the sampler needs it. */
export type ApportionVersion = Pick<Version, "fromStep" | "weights">;

interface VersionTree {
  readonly fromStep: number;
  /** Node weight sums (leaves: the weight), indexed by node id. */
  readonly w: Float64Array;
  /** Node cumulative targets at fromStep. */
  readonly tauF: Float64Array;
  /** Internal nodes (id - K): units and left-child units at fromStep. */
  readonly nF: Float64Array;
  readonly lF: Float64Array;
}

/** Result buffers for one step's counts (reused across calls to avoid allocation). */
export interface StepCounts {
  /** Domains with a non-zero count this step, in increasing order. */
  domains: Uint32Array;
  /** Their counts. */
  counts: Uint32Array;
  /** Their cumulative draws before this step (the cursor into the domain's sequence). */
  cursors: Float64Array;
  /** Number of valid entries. */
  length: number;
}

export class Apportioner {
  readonly k: number;
  readonly batchSize: number;
  /** Internal node i (id K + i): children ids. */
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly root: number;
  private readonly versions: VersionTree[] = [];

  constructor(k: number, batchSize: number) {
    if (k < 1) throw new RangeError("need at least one domain");
    this.k = k;
    this.batchSize = batchSize;
    this.left = new Int32Array(Math.max(0, k - 1));
    this.right = new Int32Array(Math.max(0, k - 1));
    let next = k;
    const build = (lo: number, hi: number): number => {
      if (hi - lo === 1) return lo;
      const mid = (lo + hi) >>> 1;
      const id = next++;
      const l = build(lo, mid);
      const r = build(mid, hi);
      this.left[id - k] = l;
      this.right[id - k] = r;
      return id;
    };
    this.root = build(0, k);
  }

  get versionCount(): number {
    return this.versions.length;
  }

  /**
   * Add the next version. `fromStep` must be >= the previous version's (equal replaces the
   * previous one's effect from that step, as when two versions commit at the same frontier).
   */
  addVersion(v: ApportionVersion): void {
    const k = this.k;
    if (v.weights.length !== k) throw new RangeError(`expected ${k} weights, got ${v.weights.length}`);
    const prev = this.versions[this.versions.length - 1];
    if (prev && v.fromStep < prev.fromStep) throw new RangeError(`version fromStep ${v.fromStep} < previous ${prev.fromStep}`);
    const nodes = 2 * k - 1;
    const w = new Float64Array(nodes);
    for (let d = 0; d < k; d++) w[d] = v.weights[d]!;
    // Internal ids are assigned parent-first, so walking them in reverse sums bottom-up.
    for (let id = nodes - 1; id >= k; id--) w[id] = w[this.left[id - k]!]! + w[this.right[id - k]!]!;
    const tauF = new Float64Array(nodes);
    const nF = new Float64Array(Math.max(0, k - 1));
    const lF = new Float64Array(Math.max(0, k - 1));
    if (prev) {
      const dt = v.fromStep - prev.fromStep;
      const b = this.batchSize;
      for (let id = 0; id < nodes; id++) tauF[id] = prev.tauF[id]! + b * prev.w[id]! * dt;
      tauF[this.root] = b * v.fromStep;
      // Snapshot every internal node's split at fromStep under the previous version.
      const walk = (id: number, n: number): void => {
        if (id < k) return;
        const l = this.splitAt(prev, id, v.fromStep, n);
        nF[id - k] = n;
        lF[id - k] = l;
        walk(this.left[id - k]!, l);
        walk(this.right[id - k]!, n - l);
      };
      walk(this.root, b * v.fromStep);
    }
    this.versions.push({ fromStep: v.fromStep, w, tauF, nF, lF });
  }

  /** Cumulative draws of every domain in steps [0, step). */
  cumulative(step: number): Float64Array {
    const out = new Float64Array(this.k);
    const vt = this.versionAt(step);
    const walk = (id: number, n: number): void => {
      if (id < this.k) {
        out[id] = n;
        return;
      }
      const l = this.splitAt(vt, id, step, n);
      walk(this.left[id - this.k]!, l);
      walk(this.right[id - this.k]!, n - l);
    };
    walk(this.root, this.batchSize * step);
    return out;
  }

  /** Counts of step `step` (slots of the global batch per domain) into `out`. */
  countsAt(step: number, out: StepCounts): void {
    const vt = this.versionAt(step);
    const k = this.k;
    out.length = 0;
    const walk = (id: number, n0: number, n1: number): void => {
      if (n1 === n0) return;
      if (id < k) {
        const i = out.length++;
        out.domains[i] = id;
        out.counts[i] = n1 - n0;
        out.cursors[i] = n0;
        return;
      }
      const l0 = this.splitAt(vt, id, step, n0);
      const l1 = this.splitAt(vt, id, step + 1, n1);
      walk(this.left[id - k]!, l0, l1);
      walk(this.right[id - k]!, n0 - l0, n1 - l1);
    };
    walk(this.root, this.batchSize * step, this.batchSize * (step + 1));
  }

  /** A fresh StepCounts buffer big enough for any step. */
  newCounts(): StepCounts {
    const m = Math.min(this.k, this.batchSize);
    return { domains: new Uint32Array(m), counts: new Uint32Array(m), cursors: new Float64Array(m), length: 0 };
  }

  private versionAt(step: number): VersionTree {
    const vs = this.versions;
    if (vs.length === 0) throw internal("apportioner: no version added");
    return vs[lastAtOrBelow(vs.length, step, (i) => vs[i]!.fromStep)]!;
  }

  /** Left child's cumulative units of internal node `id` at `step`, given the node's units `n`. */
  private splitAt(vt: VersionTree, id: number, step: number, n: number): number {
    const k = this.k;
    const li = this.left[id - k]!;
    const dt = step - vt.fromStep;
    const b = this.batchSize;
    const wNode = vt.w[id]!;
    const wLeft = vt.w[li]!;
    const tau = vt.tauF[id]! + b * wNode * dt;
    const tauL = vt.tauF[li]! + b * wLeft * dt;
    const p = wNode > 0 ? wLeft / wNode : 0.5;
    let l = Math.floor(tauL + p * (n - tau) + 0.5);
    const lo = vt.lF[id - k]!;
    const hi = lo + (n - vt.nF[id - k]!);
    if (l < lo) l = lo;
    else if (l > hi) l = hi;
    return l;
  }
}
