/**
 * Loading a run's domains: open each split's source, derive what strategies know about
 * the domain (sizes, bounds, duplicate clusters, compressibility) and what planning needs
 * (epoch sizes, difficulty order).
 */
import type { RunConfig } from "../config/schema.js";
import { invalid } from "../errors.js";
import type { DomainInfo } from "../../strategies/types.js";
import type { PlanDomain } from "../sampling/plan.js";
import { difficultyOrder } from "../sources/difficulty.js";
import { openSource, type OpenContext } from "../sources/open.js";
import type { Source } from "../sources/source.js";
import { domainStats } from "../sources/domain-stats.js";

export interface LoadedDomain {
  readonly name: string;
  readonly train: Source;
  readonly eval: Source | null;
  readonly info: DomainInfo;
  readonly plan: PlanDomain;
}

export interface DomainLoadContext {
  readonly cacheDir: string;
  readonly baseDir: string;
}

export function loadDomains(cfg: RunConfig, lctx: DomainLoadContext): LoadedDomain[] {
  const ctx: OpenContext = { cacheDir: lctx.cacheDir, baseDir: lctx.baseDir, seqLen: cfg.seqLen };
  const out: LoadedDomain[] = [];
  try {
    cfg.domains.forEach((d, i) => {
      const where = `domains[${i}] ("${d.name}")`;
      const train = openSource(d.train, ctx, `${where}.train`);
      const evalSrc = d.eval ? openSource(d.eval, ctx, `${where}.eval`) : null;
      if (evalSrc && evalSrc.kind !== train.kind) throw invalid(`${where}.eval: format differs from its train split`);
      const stats = domainStats(train, lctx.cacheDir);
      out.push({
        name: d.name,
        train,
        eval: evalSrc,
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
        },
        plan: { size: train.size, difficultyOrder: train.difficulty ? difficultyOrder(train.difficulty) : null },
      });
    });
  } catch (e) {
    for (const d of out) {
      d.train.close();
      d.eval?.close();
    }
    throw e;
  }
  const kinds = new Set(out.map((d) => `${d.train.kind}:${d.train.dtype}:${d.train.windowTokens}`));
  if (kinds.size > 1) throw invalid(`domains: all domains must serve the same payload (kind, dtype, window); got ${[...kinds].join(" / ")}`);
  return out;
}
