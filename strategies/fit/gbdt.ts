/**
 * Gradient-boosted regression trees (squared loss), compact and deterministic: the stand-in
 * for LightGBM, which the RegMix paper uses to regress target loss on mixture weights.
 *
 * Why our own: the npm options are random forests / single CART trees (ml-random-forest,
 * ml-cart), not boosting, and see few releases; a GBDT for a few hundred rows and tens of
 * features is ~150 lines and keeps the strategy pure and dependency-free.
 *
 * Algorithm (Friedman 2001, as LightGBM's `gbdt` with squared loss): start from the mean;
 * each round fits a depth-limited tree to the residuals by exact least-squares splits
 * (gain = S_L²/n_L + S_R²/n_R − S²/n), leaves hold λ-shrunk residual means, and the tree's
 * output is scaled by the learning rate. Trees grow level by level over presorted feature
 * orders, so one level costs O(n · d). No randomness: ties break by feature then position.
 */

export interface GbdtOptions {
  /** Boosting rounds (default 500). */
  readonly trees?: number;
  /** Shrinkage per tree (default 0.05). */
  readonly learningRate?: number;
  /** Maximum tree depth (default 3, i.e. at most 8 leaves). */
  readonly maxDepth?: number;
  /** Minimum rows in a leaf (default 5). */
  readonly minLeaf?: number;
  /** L2 penalty on leaf values: leaf = S / (n + λ) (default 1). */
  readonly lambda?: number;
}

export interface GbdtModel {
  readonly kind: "gbdt";
  readonly base: number;
  /** Flattened trees: per node feature (−1 = leaf), threshold, left, right, value. */
  readonly trees: readonly {
    readonly feature: readonly number[];
    readonly threshold: readonly number[];
    readonly left: readonly number[];
    readonly right: readonly number[];
    readonly value: readonly number[];
  }[];
}

interface MutableTree {
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  value: number[];
}

export function fitGbdt(x: readonly (readonly number[])[], y: readonly number[], opts: GbdtOptions = {}): GbdtModel {
  const nTrees = opts.trees ?? 500;
  const lr = opts.learningRate ?? 0.05;
  const maxDepth = opts.maxDepth ?? 3;
  const minLeaf = Math.max(1, opts.minLeaf ?? 5);
  const lambda = opts.lambda ?? 1;
  const n = y.length;
  const d = n > 0 ? x[0]!.length : 0;
  const base = n > 0 ? y.reduce((a, b) => a + b, 0) / n : 0;
  if (n === 0) return { kind: "gbdt", base, trees: [] };

  // Presort row indices once per feature.
  const order: Int32Array[] = [];
  for (let f = 0; f < d; f++) {
    const idx = Array.from({ length: n }, (_, i) => i).sort((a, b) => x[a]![f]! - x[b]![f]! || a - b);
    order.push(Int32Array.from(idx));
  }
  const pred = new Float64Array(n).fill(base);
  const resid = new Float64Array(n);
  const nodeOf = new Int32Array(n);
  const trees: MutableTree[] = [];

  for (let t = 0; t < nTrees; t++) {
    for (let i = 0; i < n; i++) resid[i] = y[i]! - pred[i]!;
    const tree: MutableTree = { feature: [-1], threshold: [0], left: [-1], right: [-1], value: [0] };
    nodeOf.fill(0);
    // Per-node sums for the current frontier.
    let frontier = [0];
    const sum = [0];
    const cnt = [0];
    for (let i = 0; i < n; i++) {
      sum[0] = sum[0]! + resid[i]!;
      cnt[0] = cnt[0]! + 1;
    }
    for (let depth = 0; depth < maxDepth && frontier.length > 0; depth++) {
      const slot = new Map<number, number>();
      frontier.forEach((node, k) => slot.set(node, k));
      const m = frontier.length;
      const bestGain = new Float64Array(m).fill(1e-12);
      const bestFeat = new Int32Array(m).fill(-1);
      const bestThr = new Float64Array(m);
      const lSum = new Float64Array(m);
      const lCnt = new Int32Array(m);
      const last = new Float64Array(m);
      for (let f = 0; f < d; f++) {
        lSum.fill(0);
        lCnt.fill(0);
        const ord = order[f]!;
        for (let r = 0; r < n; r++) {
          const i = ord[r]!;
          const k = slot.get(nodeOf[i]!);
          if (k === undefined) continue;
          const v = x[i]![f]!;
          const node = frontier[k]!;
          const lc = lCnt[k]!;
          const total = cnt[node]!;
          if (lc >= minLeaf && total - lc >= minLeaf && v > last[k]!) {
            const ls = lSum[k]!;
            const rs = sum[node]! - ls;
            const gain = (ls * ls) / lc + (rs * rs) / (total - lc) - (sum[node]! * sum[node]!) / total;
            if (gain > bestGain[k]!) {
              bestGain[k] = gain;
              bestFeat[k] = f;
              bestThr[k] = (last[k]! + v) / 2;
            }
          }
          lSum[k] = lSum[k]! + resid[i]!;
          lCnt[k] = lc + 1;
          last[k] = v;
        }
      }
      const next: number[] = [];
      for (let k = 0; k < m; k++) {
        const f = bestFeat[k]!;
        if (f < 0) continue;
        const node = frontier[k]!;
        const l = tree.feature.length;
        for (const child of [l, l + 1]) {
          tree.feature[child] = -1;
          tree.threshold[child] = 0;
          tree.left[child] = -1;
          tree.right[child] = -1;
          tree.value[child] = 0;
          sum[child] = 0;
          cnt[child] = 0;
        }
        tree.feature[node] = f;
        tree.threshold[node] = bestThr[k]!;
        tree.left[node] = l;
        tree.right[node] = l + 1;
        next.push(l, l + 1);
      }
      if (next.length === 0) break;
      for (let i = 0; i < n; i++) {
        const node = nodeOf[i]!;
        const f = tree.feature[node]!;
        if (f < 0) continue;
        const child = x[i]![f]! <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
        nodeOf[i] = child;
        sum[child] = sum[child]! + resid[i]!;
        cnt[child] = cnt[child]! + 1;
      }
      frontier = next;
    }
    // Leaf values: shrunk residual means, scaled by the learning rate.
    const lsum = new Map<number, number>();
    const lcnt = new Map<number, number>();
    for (let i = 0; i < n; i++) {
      const node = nodeOf[i]!;
      lsum.set(node, (lsum.get(node) ?? 0) + resid[i]!);
      lcnt.set(node, (lcnt.get(node) ?? 0) + 1);
    }
    for (const [node, s] of lsum) tree.value[node] = (lr * s) / (lcnt.get(node)! + lambda);
    for (let i = 0; i < n; i++) pred[i] = pred[i]! + tree.value[nodeOf[i]!]!;
    trees.push(tree);
  }
  return { kind: "gbdt", base, trees };
}

export function predictGbdt(m: GbdtModel, row: readonly number[]): number {
  let s = m.base;
  for (const t of m.trees) {
    let node = 0;
    while (t.feature[node]! >= 0) {
      node = (row[t.feature[node]!] ?? 0) <= t.threshold[node]! ? t.left[node]! : t.right[node]!;
    }
    s += t.value[node]!;
  }
  return s;
}
