/**
 * Batch planning: which (domain, sample) fills every slot of a step's global batch.
 * A pure function of (seed, domain sizes, versions, step) — the determinism contract.
 *
 * 1. Per-step integer counts per domain come from the `Apportioner` (random access).
 * 2. Domain d's j-th draw of the run (j = its cumulative count before the step + i) maps
 *    to a sample through a keyed permutation per (seed, domain, epoch): without
 *    replacement inside an epoch. Under a curriculum competence c < 1 the permutation
 *    runs over the easiest ceil(c·N) samples of the domain's difficulty order instead.
 * 3. The slots are shuffled by a keyed permutation per (seed, step), so every rank's
 *    contiguous slice gets a mix of domains rather than one domain each.
 *
 * The global sequence does not depend on the world size: a rank's slice is a window on it.
 */
import { Apportioner, type StepCounts } from "./apportion.js";
import { hashWords, mix } from "./hash.js";
import { Permutation } from "./permutation.js";
import { lastAtOrBelow } from "../util/search.js";
import type { Version } from "../history/events.js";

/** What planning needs to know about a domain. */
export interface PlanDomain {
  /** Samples in one epoch of the train split. */
  readonly size: number;
  /** Sample indices sorted from easiest to hardest (curriculum), or null. */
  readonly difficultyOrder: Uint32Array | null;
}

/** The part of a version record (src/history) that planning reads. */
export type PlanVersion = Pick<Version, "version" | "fromStep" | "weights" | "competence">;

/** The global batch of one step. Arrays are owned by the caller's `GlobalBatch` buffer. */
export interface GlobalBatch {
  step: number;
  version: number;
  /** Domain index per slot. */
  readonly domains: Uint32Array;
  /** Sample index within the domain's train split, per slot. */
  readonly samples: Float64Array;
  /** 64-bit digest of the (domain, sample) sequence as two 32-bit halves. */
  digestHi: number;
  digestLo: number;
}

export class BatchPlanner {
  readonly batchSize: number;
  readonly seed: number;
  private readonly domains: readonly PlanDomain[];
  private readonly apportioner: Apportioner;
  private readonly versions: PlanVersion[] = [];
  private readonly counts: StepCounts;
  /** Cache of the last permutation used per domain (epochs change rarely). */
  private readonly permCache: (Permutation | null)[];
  private readonly permKey: Float64Array;
  /** Scratch: domain and draw number per layout position. */
  private readonly layout: Uint32Array;
  private readonly layoutDraw: Float64Array;

  constructor(seed: number, batchSize: number, domains: readonly PlanDomain[]) {
    this.seed = seed >>> 0;
    this.batchSize = batchSize;
    this.domains = domains;
    this.apportioner = new Apportioner(domains.length, batchSize);
    this.counts = this.apportioner.newCounts();
    this.permCache = domains.map(() => null);
    this.permKey = new Float64Array(domains.length).fill(-1);
    this.layout = new Uint32Array(batchSize);
    this.layoutDraw = new Float64Array(batchSize);
  }

  /** How many domains are planned. */
  get domainCount(): number {
    return this.domains.length;
  }

  /** Versions in order of fromStep. */
  get versionList(): readonly PlanVersion[] {
    return this.versions;
  }

  addVersion(v: PlanVersion): void {
    this.apportioner.addVersion(v);
    this.versions.push(v);
  }

  /** A buffer for `plan`. */
  newBatch(): GlobalBatch {
    return {
      step: 0,
      version: 0,
      domains: new Uint32Array(this.batchSize),
      samples: new Float64Array(this.batchSize),
      digestHi: 0,
      digestLo: 0,
    };
  }

  /** Cumulative draws per domain in steps [0, step). */
  cumulative(step: number): Float64Array {
    return this.apportioner.cumulative(step);
  }

  /** Per-domain counts of one step (a fresh array of length K). */
  stepCounts(step: number): Uint32Array {
    this.apportioner.countsAt(step, this.counts);
    const out = new Uint32Array(this.domains.length);
    for (let i = 0; i < this.counts.length; i++) out[this.counts.domains[i]!] = this.counts.counts[i]!;
    return out;
  }

  /** Fill `out` with the global batch of `step`. */
  plan(step: number, out: GlobalBatch): void {
    const b = this.batchSize;
    const version = this.versionAt(step);
    const c = this.counts;
    this.apportioner.countsAt(step, c);
    const layoutDraw = this.layoutDraw;
    // Layout position q in [0, B) belongs to the entry whose prefix range holds q; the
    // slot order is a seeded Fisher–Yates shuffle of the layout (O(B), keyed by step).
    const layout = this.layout;
    let q = 0;
    for (let i = 0; i < c.length; i++) {
      const d = c.domains[i]!;
      const cursor = c.cursors[i]!;
      for (let j = 0; j < c.counts[i]!; j++) {
        layout[q] = d;
        layoutDraw[q] = cursor + j;
        q++;
      }
    }
    let r = hashWords(this.seed, 0x5107, step) || 1;
    for (let i = b - 1; i > 0; i--) {
      r ^= r << 13;
      r ^= r >>> 17;
      r ^= r << 5;
      const j = (r >>> 0) % (i + 1);
      const td = layout[i]!;
      layout[i] = layout[j]!;
      layout[j] = td;
      const tw = layoutDraw[i]!;
      layoutDraw[i] = layoutDraw[j]!;
      layoutDraw[j] = tw;
    }
    let hLo = 0x243f6a88;
    let hHi = 0x85a308d3;
    for (let j = 0; j < b; j++) {
      const d = layout[j]!;
      const sample = this.sampleOf(d, layoutDraw[j]!, version);
      out.domains[j] = d;
      out.samples[j] = sample;
      hLo = mix(mix(hLo, d), sample % 4294967296);
      hHi = mix(mix(hHi, sample % 4294967296), Math.floor(sample / 4294967296) ^ d);
    }
    out.step = step;
    out.version = version.version;
    out.digestHi = hHi;
    out.digestLo = hLo;
  }

  /** The version in force at `step`. */
  versionAt(step: number): PlanVersion {
    const vs = this.versions;
    return vs[lastAtOrBelow(vs.length, step, (i) => vs[i]!.fromStep)]!;
  }

  /** The sample of domain d's draw number `draw` (0-based over the whole run). */
  private sampleOf(d: number, draw: number, version: PlanVersion): number {
    const dom = this.domains[d]!;
    const n = dom.size;
    const comp = version.competence?.[d];
    if (dom.difficultyOrder && comp !== undefined && comp < 1) {
      const m = Math.max(1, Math.min(n, Math.ceil(comp * n)));
      const epoch = Math.floor(draw / m);
      const perm = this.permutation(d, epoch, m);
      return dom.difficultyOrder[perm.at(draw - epoch * m)]!;
    }
    const epoch = Math.floor(draw / n);
    return this.permutation(d, epoch, n).at(draw - epoch * n);
  }

  private permutation(d: number, epoch: number, m: number): Permutation {
    const key = epoch * 4294967296 + m; // unique per (epoch, size) for the cache check
    const cached = this.permCache[d];
    if (cached && this.permKey[d] === key) return cached;
    const p = new Permutation(m, hashWords(this.seed, d, epoch, m));
    this.permCache[d] = p;
    this.permKey[d] = key;
    return p;
  }
}
