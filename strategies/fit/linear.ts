/**
 * Linear least squares with an intercept, the RegMix paper's baseline regression.
 *
 * Mixture weights sum to 1, so the features are collinear with the intercept; a tiny ridge
 * term (default 1e-8 × trace/d) makes the normal equations solvable and picks the
 * near-minimum-norm solution, which is what an SVD-based lstsq would return.
 */

export interface LinearModel {
  readonly kind: "linear";
  readonly intercept: number;
  readonly coef: readonly number[];
}

/** Solve A x = b in place by Gaussian elimination with partial pivoting (A is n × n). */
export function solveLinear(a: number[][], b: number[]): number[] {
  const n = b.length;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r]![c]!) > Math.abs(a[p]![c]!)) p = r;
    if (p !== c) {
      [a[p], a[c]] = [a[c]!, a[p]!];
      [b[p], b[c]] = [b[c]!, b[p]!];
    }
    const piv = a[c]![c]!;
    if (Math.abs(piv) < 1e-300) continue;
    for (let r = c + 1; r < n; r++) {
      const f = a[r]![c]! / piv;
      if (f === 0) continue;
      for (let k = c; k < n; k++) a[r]![k] = a[r]![k]! - f * a[c]![k]!;
      b[r] = b[r]! - f * b[c]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = b[r]!;
    for (let k = r + 1; k < n; k++) s -= a[r]![k]! * x[k]!;
    const piv = a[r]![r]!;
    x[r] = Math.abs(piv) < 1e-300 ? 0 : s / piv;
  }
  return x;
}

/** Fit y ≈ intercept + Σ coef_j x_j by ridge-regularised least squares on centred data. */
export function fitLinear(x: readonly (readonly number[])[], y: readonly number[], ridge = 1e-8): LinearModel {
  const n = y.length;
  const d = n > 0 ? x[0]!.length : 0;
  if (n === 0) return { kind: "linear", intercept: 0, coef: new Array<number>(d).fill(0) };
  const mx = new Array<number>(d).fill(0);
  let my = 0;
  for (let i = 0; i < n; i++) {
    my += y[i]!;
    for (let j = 0; j < d; j++) mx[j] = mx[j]! + x[i]![j]!;
  }
  my /= n;
  for (let j = 0; j < d; j++) mx[j] = mx[j]! / n;
  const ata: number[][] = Array.from({ length: d }, () => new Array<number>(d).fill(0));
  const aty = new Array<number>(d).fill(0);
  for (let i = 0; i < n; i++) {
    const row = x[i]!;
    const dy = y[i]! - my;
    for (let j = 0; j < d; j++) {
      const dj = row[j]! - mx[j]!;
      aty[j] = aty[j]! + dj * dy;
      const rj = ata[j]!;
      for (let k = j; k < d; k++) rj[k] = rj[k]! + dj * (row[k]! - mx[k]!);
    }
  }
  let trace = 0;
  for (let j = 0; j < d; j++) {
    for (let k = 0; k < j; k++) ata[j]![k] = ata[k]![j]!;
    trace += ata[j]![j]!;
  }
  const lam = ridge * Math.max(trace / Math.max(d, 1), 1e-12);
  for (let j = 0; j < d; j++) ata[j]![j] = ata[j]![j]! + lam;
  const coef = solveLinear(ata, aty);
  let intercept = my;
  for (let j = 0; j < d; j++) intercept -= coef[j]! * mx[j]!;
  return { kind: "linear", intercept, coef };
}

export function predictLinear(m: LinearModel, row: readonly number[]): number {
  let s = m.intercept;
  for (let j = 0; j < m.coef.length; j++) s += m.coef[j]! * (row[j] ?? 0);
  return s;
}
