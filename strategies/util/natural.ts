/**
 * The natural mixture: each domain's share of the total train size (`DomainInfo.size`, the
 * token count for token files, bytes for text). ODM and ADO start from it — what sampling
 * the concatenated corpus would give — rather than from uniform.
 */
import type { DomainInfo } from "../types.js";

/** Name → share of the total train size; undefined (= uniform) when no size is known. */
export function naturalMixture(domains: readonly DomainInfo[]): Record<string, number> | undefined {
  const ok = (d: DomainInfo) => Number.isFinite(d.size) && d.size > 0;
  const total = domains.reduce((a, d) => a + (ok(d) ? d.size : 0), 0);
  if (!(total > 0)) return undefined;
  return Object.fromEntries(domains.map((d) => [d.name, ok(d) ? d.size / total : 0]));
}
