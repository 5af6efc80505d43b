/**
 * Loading a run's domains: open each split's source, derive what strategies know about
 * the domain (sizes, bounds, duplicate clusters, compressibility) and what planning needs
 * (epoch sizes, difficulty order).
 */
import type { RunConfig } from "../config/schema.js";
import { invalid } from "../errors.js";
import type { DomainInfo } from "../../strategies/types.js";
import { hashString, type PlanDomain } from "../sampling/index.js";
import {
  STATS_SAMPLE,
  SubsetSource,
  cachedJson,
  carveHoldout,
  contentKey,
  disjointEvalProbes,
  type DisjointProbes,
  difficultyOrder,
  domainStats,
  recordWholeFiles,
  sharedDuplicateFraction,
  type Holdout,
  type Source,
} from "../sources/index.js";
import { openSource, prepareSource, type OpenContext } from "./open-source.js";
import { tokenizeSpecs } from "../tokenize/run-payload.js";
import type { JobProgress } from "../tokenize/prepare.js";
import { getStrategy } from "../../strategies/index.js";

export interface LoadedDomain {
  readonly name: string;
  readonly train: Source;
  readonly eval: Source | null;
  readonly info: DomainInfo;
  readonly plan: PlanDomain;
  /**
   * Under a strategy that uses probes, for a user-supplied eval split: the fraction of the
   * eval documents it probes with that near-duplicate a train document — 0 when disjoint
   * probes were chosen (`holdout` "auto"), the share of candidates with a copy in training
   * when none could be; with `holdout` "off", of up to 64 sampled eval documents against a
   * train sample. 0 otherwise. High values mean probe losses will fall by memorisation (the
   * registry warns).
   */
  readonly evalSharesDuplicates: number;
  /**
   * Index in the user's eval split of probe sample `i` of `eval`, when `eval` is a choice
   * of documents from it (disjoint probes): the contract (EvalProbe.sample_indices) names
   * documents of the eval split the user gave, not positions in our choice. Null when
   * `eval` is that split itself, or a holdout carved from the train split.
   */
  readonly evalIndexOf: ((i: number) => number) | null;
}

export interface DomainLoadContext {
  readonly cacheDir: string;
  readonly baseDir: string;
}

/**
 * What the heavy part of loading derives from one domain's data (indexing, near-duplicate
 * clustering, compressibility, holdout carving, the overlap check, the difficulty sort):
 * plain data, so that it can be computed in a worker thread (src/sources/prepare.ts) and
 * handed to `openPrepared` on the serving thread.
 */
export interface PreparedDomain {
  readonly info: DomainInfo;
  readonly evalSharesDuplicates: number;
  /**
   * The probes and every train document leaving training, or null when nothing changed:
   * `from` "train" = carved out of the train split (no eval split), "eval" = the eval
   * split's documents that share no near-duplicate with what stays in training.
   */
  readonly holdout: { readonly from: "train" | "eval"; readonly probes: number[]; readonly excluded: number[] } | null;
  readonly difficultyOrder: Uint32Array | null;
  /** Files the domain's sources read whole: read asynchronously before `openPrepared` (src/sources/file-bytes.ts). */
  readonly wholeFiles: readonly string[];
}

/** Where preparation is, reported between phases of each domain. */
export interface PrepareProgress {
  readonly phase: "open" | "overlap" | "holdout" | "statistics" | "done";
  readonly domain: string;
  readonly domainsDone: number;
  readonly domainsTotal: number;
}

/** Load every domain on this thread: `deriveDomains` and `openPrepared` in one (recovery, tests, tools). */
export function loadDomains(cfg: RunConfig, lctx: DomainLoadContext): LoadedDomain[] {
  const specs = tokenizeSpecs(cfg, lctx.baseDir);
  const out: LoadedDomain[] = [];
  try {
    cfg.domains.forEach((_, i) => {
      const p = prepareDomain(cfg, i, lctx, () => undefined, true, specs);
      out.push(p.loaded!);
    });
  } catch (e) {
    for (const d of out) closeLoaded(d);
    throw e;
  }
  checkSamePayload(out);
  return out;
}

/** The heavy part for every domain (a worker thread's job): opens, derives, closes. */
export function deriveDomains(cfg: RunConfig, lctx: DomainLoadContext, onProgress: (p: PrepareProgress) => void = () => undefined): PreparedDomain[] {
  const specs = tokenizeSpecs(cfg, lctx.baseDir);
  return cfg.domains.map((_, i) => {
    const r = recordWholeFiles(() => prepareDomain(cfg, i, lctx, onProgress, false, specs).prepared);
    return { ...r.value, wholeFiles: r.files };
  });
}

/**
 * The light part for domain `i`, given what `deriveDomains` derived: opens the splits
 * (their indexes are cached by now) and applies the carved holdout.
 */
export function openPrepared(cfg: RunConfig, i: number, lctx: DomainLoadContext, p: PreparedDomain, specs = tokenizeSpecs(cfg, lctx.baseDir)): LoadedDomain {
  const d = cfg.domains[i]!;
  const where = `domains[${i}] ("${d.name}")`;
  const ctx: OpenContext = { cacheDir: lctx.cacheDir, baseDir: lctx.baseDir, seqLen: cfg.seqLen, tokenize: specs[i] };
  let train: Source = openSource(d.train, ctx, `${where}.train`);
  let evalSrc: Source | null = null;
  let evalIndexOf: LoadedDomain["evalIndexOf"] = null;
  try {
    evalSrc = d.eval ? openSource(d.eval, ctx, `${where}.eval`) : null;
    if (p.holdout) {
      const fromEval = p.holdout.from === "eval" && evalSrc !== null;
      const picked = SubsetSource.picking(fromEval ? evalSrc! : train, p.holdout.probes, fromEval);
      if (fromEval) evalIndexOf = picked.toInner;
      evalSrc = picked;
      train = SubsetSource.excluding(train, p.holdout.excluded);
    }
  } catch (e) {
    train.close();
    throw e;
  }
  if (train.size !== p.info.trainSamples) {
    train.close();
    evalSrc?.close();
    throw invalid(`${where}.train: the data changed while the run was being prepared (${p.info.trainSamples} samples, now ${train.size}); retry CreateRun`);
  }
  return { name: d.name, train, eval: evalSrc, info: p.info, plan: { size: train.size, difficultyOrder: p.difficultyOrder }, evalSharesDuplicates: p.evalSharesDuplicates, evalIndexOf };
}

/** All domains must serve the same payload shape. */
export function checkSamePayload(out: readonly LoadedDomain[]): void {
  const kinds = new Set(out.map((d) => `${d.train.kind}:${d.train.dtype}:${d.train.windowTokens}`));
  if (kinds.size > 1) {
    for (const d of out) closeLoaded(d);
    throw invalid(
      `domains: all domains must serve the same payload (kind:dtype:window tokens); got ${out.map((d) => `"${d.name}" ${d.train.kind}:${d.train.dtype}:${d.train.windowTokens}`).join(", ")}` +
        (out.some((d) => d.train.windowTokens === null && d.train.kind === "tokens") ? `; text is tokenized into seqLen + 1 windows, so token domains of such a run need mode "windows"` : ""),
    );
  }
}

export function closeLoaded(d: LoadedDomain): void {
  d.train.close();
  d.eval?.close();
}

function prepareDomain(
  cfg: RunConfig,
  i: number,
  lctx: DomainLoadContext,
  onProgress: (p: PrepareProgress) => void,
  keepOpen: boolean,
  specs: ReturnType<typeof tokenizeSpecs>,
): { prepared: PreparedDomain; loaded: LoadedDomain | null } {
  const d = cfg.domains[i]!;
  const where = `domains[${i}] ("${d.name}")`;
  const tell = (phase: PrepareProgress["phase"]): void => onProgress({ phase, domain: d.name, domainsDone: i + (phase === "done" ? 1 : 0), domainsTotal: cfg.domains.length });
  const ctx: OpenContext = { cacheDir: lctx.cacheDir, baseDir: lctx.baseDir, seqLen: cfg.seqLen, tokenize: specs[i] };
  tell("open");
  let train: Source = openSource(d.train, ctx, `${where}.train`);
  let evalSrc: Source | null = null;
  try {
    evalSrc = d.eval ? openSource(d.eval, ctx, `${where}.eval`) : null;
    if (evalSrc && evalSrc.kind !== train.kind) throw invalid(`${where}.eval: format differs from its train split`);
    // One deterministic sample of the split serves as cache key, statistics and overlap check.
    let trainTexts = train.textSample(STATS_SAMPLE);
    const trainKey = contentKey(train, trainTexts);
    let heldOut = 0;
    let evalSharesDuplicates = 0;
    let holdout: PreparedDomain["holdout"] = null;
    let evalIndexOf: LoadedDomain["evalIndexOf"] = null;
    const usesEval = getStrategy(cfg.strategy.name)?.usesEval === true;
    if (evalSrc && usesEval && d.holdout === "off") {
      tell("overlap");
      evalSharesDuplicates = evalDuplicateShare(evalSrc, trainKey, trainTexts, lctx.cacheDir);
    }
    if (evalSrc && usesEval && d.holdout === "auto") {
      tell("overlap");
      const h = disjointFor(evalSrc, train, trainKey, trainTexts, d.name, cfg.evalProbes, lctx.cacheDir);
      if (h.contaminated > 0 && h.probes.length > 0) {
        // Probe only documents no copy of which stays in training.
        holdout = { from: "eval", probes: h.probes, excluded: h.excluded };
        const picked = SubsetSource.picking(evalSrc, h.probes, true); // the eval split is this view's alone
        evalIndexOf = picked.toInner;
        evalSrc = picked;
        if (h.excluded.length > 0) {
          train = SubsetSource.excluding(train, h.excluded);
          trainTexts = train.textSample(STATS_SAMPLE);
        }
        heldOut = h.excluded.length;
      } else if (h.contaminated > 0) {
        evalSharesDuplicates = h.contaminated / h.candidates; // every candidate's copies are too many to hold out
      }
    }
    if (!evalSrc && d.holdout === "auto" && usesEval) {
      tell("holdout");
      const h = holdoutFor(train, trainKey, d.name, cfg.evalProbes, lctx.cacheDir);
      if (h.probes.length > 0) {
        holdout = { from: "train", probes: h.probes, excluded: h.excluded };
        evalSrc = SubsetSource.picking(train, h.probes);
        train = SubsetSource.excluding(train, h.excluded);
        trainTexts = train.textSample(STATS_SAMPLE); // statistics describe what is trained on
        heldOut = h.excluded.length;
      }
    }
    tell("statistics");
    const stats = domainStats(train, lctx.cacheDir, trainTexts);
    const prepared: PreparedDomain = {
      info: {
        name: d.name,
        trainSamples: train.size,
        evalSamples: evalSrc?.size ?? 0,
        size: train.sizeMeasure,
        minWeight: d.minWeight,
        maxWeight: d.maxWeight,
        pinned: d.pinned,
        uniqueClusters: stats.uniqueClusters,
        compressRatio: stats.compressRatio,
        heldOutSamples: heldOut,
      },
      evalSharesDuplicates,
      holdout,
      difficultyOrder: train.difficulty ? difficultyOrder(train.difficulty) : null,
      wholeFiles: [],
    };
    tell("done");
    if (!keepOpen) {
      train.close();
      evalSrc?.close();
      return { prepared, loaded: null };
    }
    const loaded: LoadedDomain = { name: d.name, train, eval: evalSrc, info: prepared.info, plan: { size: train.size, difficultyOrder: prepared.difficultyOrder }, evalSharesDuplicates, evalIndexOf };
    return { prepared, loaded };
  } catch (e) {
    train.close();
    evalSrc?.close();
    throw e;
  }
}

/**
 * Run the index-time work of a run's domains (decoding, tokenizing) in worker threads, so
 * that `loadDomains` afterwards only reads caches; progress per file.
 */
export async function prepareDomains(cfg: RunConfig, lctx: DomainLoadContext, onProgress?: (domain: string, p: JobProgress) => void): Promise<void> {
  const specs = tokenizeSpecs(cfg, lctx.baseDir);
  for (const [i, d] of cfg.domains.entries()) {
    const ctx: OpenContext = { cacheDir: lctx.cacheDir, baseDir: lctx.baseDir, seqLen: cfg.seqLen, tokenize: specs[i] };
    const where = `domains[${i}] ("${d.name}")`;
    await prepareSource(d.train, ctx, `${where}.train`, (p) => onProgress?.(d.name, p));
    if (d.eval) await prepareSource(d.eval, ctx, `${where}.eval`, (p) => onProgress?.(d.name, p));
  }
}

/** The carved holdout of a train split (cached next to the indexes: it reads every document). */
function holdoutFor(train: Source, trainKey: string, name: string, probes: number, cacheDir: string): Holdout {
  const key = hashString(name);
  const enc = train.kind === "text" ? "utf8" : "latin1";
  return cachedJson(cacheDir, `holdout-${trainKey}-${probes}-${key.toString(16)}.json`, () =>
    carveHoldout(train.size, (i) => train.payload(i).toString(enc), { probes, key, label: name }),
  );
}

/** Disjoint probes of a user's eval split (cached next to the indexes: it reads every train document). */
function disjointFor(evalSrc: Source, train: Source, trainKey: string, trainTexts: readonly string[], name: string, probes: number, cacheDir: string): DisjointProbes {
  const key = hashString(name);
  const enc = train.kind === "text" ? "utf8" : "latin1";
  return cachedJson(cacheDir, `disjoint-${contentKey(evalSrc)}-${trainKey}-${probes}-${key.toString(16)}.json`, () =>
    disjointEvalProbes(evalSrc.size, (i) => evalSrc.payload(i).toString(enc), train.size, (j) => train.payload(j).toString(enc), trainTexts, { probes, key, label: name }),
  );
}

/** Share of sampled eval documents with a near-duplicate among sampled train documents (cached). */
function evalDuplicateShare(evalSrc: Source, trainKey: string, trainTexts: readonly string[], cacheDir: string): number {
  const name = `evaldup-${contentKey(evalSrc)}-${trainKey}.json`;
  return cachedJson(cacheDir, name, () => ({ share: sharedDuplicateFraction(evalSrc.textSample(64), trainTexts) })).share;
}
