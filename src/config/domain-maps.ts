/**
 * Strategy parameters keyed by domain name (`weights`, `initial`, `mixtures`, a schedule's
 * stage weights, `referenceLosses`): a typo'd name used to be dropped silently (weights
 * [0, 0, 1] from a misspelt key; an all-unknown or all-zero map became uniform). Checked
 * once at the edge, after the strategy's own schema, for every such map wherever it sits.
 */
import { invalid } from "../errors.js";

/** Parameter names whose value is a map domain name → number (or a list of such maps). */
const WEIGHT_MAPS = new Set(["weights", "initial", "mixtures"]);
const VALUE_MAPS = new Set(["referenceLosses"]);

function isNumberMap(v: unknown): v is Record<string, number> {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === "number");
}

/** Throw INVALID_ARGUMENT naming the path and the known domains for an unknown name or an all-zero weight map. */
export function checkDomainMaps(params: unknown, domains: readonly string[], where = "strategy.params"): void {
  const known = new Set(domains);
  const check = (map: Record<string, number>, path: string, weights: boolean): void => {
    for (const k of Object.keys(map)) {
      if (!known.has(k)) throw invalid(`${path}: unknown domain ${JSON.stringify(k)}; known domains: ${domains.join(", ")}`);
    }
    if (weights && Object.values(map).every((x) => x === 0)) {
      throw invalid(`${path}: every weight is 0 (or the map is empty); give at least one domain a positive weight, or omit the map for the strategy's default`);
    }
  };
  const walk = (v: unknown, path: string): void => {
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, `${path}[${i}]`));
      return;
    }
    if (typeof v !== "object" || v === null) return;
    for (const [k, x] of Object.entries(v)) {
      const p = `${path}.${k}`;
      const weights = WEIGHT_MAPS.has(k);
      if (weights || VALUE_MAPS.has(k)) {
        if (isNumberMap(x)) check(x, p, weights);
        else if (Array.isArray(x) && x.every(isNumberMap)) x.forEach((m, i) => check(m, `${p}[${i}]`, weights));
        else walk(x, p);
      } else walk(x, p);
    }
  };
  walk(params, where);
}
