/**
 * Edit distance, the verifier of near-duplicate candidates (near-dup.ts).
 *
 * Why edit distance: copies of one document with 10 % of their characters edited share
 * only about a quarter of their character 5-gram shingles, and unrelated prose of the
 * same language shares up to a sixth, so shingle overlap alone cannot tell them apart.
 * Their Levenshtein distance can: on the test generator's pseudo-prose, two such copies
 * differ in at most ~0.28 of their first 512 characters (median 0.20), unrelated texts in
 * at least ~0.68 (measured figures in near-dup.ts).
 *
 * Method: Myers' bit-vector algorithm (J. ACM 1999) in Hyyrö's blocked form, 32 pattern
 * characters per machine word, so aligning two windows of w characters costs about
 * w·⌈w/32⌉ word steps, not w² cells. Callers bound the windows (`editNear`). Pure: the
 * match-mask table is module scratch, cleared after each call.
 */

/** Match masks of the current 32-character block of the pattern, by UTF-16 code unit. */
const peq = new Int32Array(0x10000);

/** Levenshtein distance (unit-cost substitution, insertion, deletion, over UTF-16 code units). */
export function levenshtein(s: string, t: string): number {
  // `a` is the longer text (walked), `b` the pattern cut into 32-character blocks.
  const a = s.length >= t.length ? s : t;
  const b = s.length >= t.length ? t : s;
  const n = a.length;
  const m = b.length;
  if (m === 0) return n;
  const blocks = Math.ceil(m / 32);
  // Horizontal +1 / −1 deltas carried from one block to the next, one bit per text position.
  const words = Math.ceil(n / 32);
  const phc = new Int32Array(words).fill(-1);
  const mhc = new Int32Array(words);
  let score = m;
  for (let blk = 0; blk < blocks; blk++) {
    const start = blk * 32;
    const end = Math.min(m, start + 32);
    const last = blk === blocks - 1;
    for (let k = start; k < end; k++) peq[b.charCodeAt(k)]! |= 1 << (k - start);
    const top = (end - start - 1) & 31;
    let pv = -1;
    let mv = 0;
    for (let i = 0; i < n; i++) {
      const w = i >>> 5;
      const bit = i & 31;
      const eq = peq[a.charCodeAt(i)]!;
      const pb = (phc[w]! >>> bit) & 1;
      const mb = (mhc[w]! >>> bit) & 1;
      const xv = eq | mv;
      const xh = ((((eq | mb) & pv) + pv) ^ pv) | eq | mb;
      let ph = mv | ~(xh | pv);
      let mh = pv & xh;
      if (last) {
        score += (ph >>> top) & 1;
        score -= (mh >>> top) & 1;
      }
      if (((ph >>> 31) ^ pb) !== 0) phc[w]! ^= 1 << bit;
      if (((mh >>> 31) ^ mb) !== 0) mhc[w]! ^= 1 << bit;
      ph = (ph << 1) | pb;
      mh = (mh << 1) | mb;
      pv = mh | ~(xv | ph);
      mv = ph & xv;
    }
    for (let k = start; k < end; k++) peq[b.charCodeAt(k)] = 0;
  }
  return score;
}

/**
 * Whether two texts are within `maxRate` normalised edit distance, judged on at most
 * `window` characters at each end: the first `window` characters of the longer text and
 * the same fraction of the shorter (of a 543- and a 511-character copy, the first 512 and
 * 482: a window cut at 512 of both would leave the longer's last 31 characters against
 * nothing, and two 10 %-edit copies then failed the bound) and, when a text is longer than
 * `window`, the last such windows too. Each compared window
 * is cut in two halves (at the same fraction of both texts), and every half must be within
 * `maxRate + PIECE_SLACK` on its own, the whole within `maxRate`: copies with scattered
 * edits differ evenly, while two texts that share only a part (a header, a footer, an
 * attribution line under different quotations) differ in one half by far more. Texts whose
 * lengths differ by more than `maxRate` of the longer are rejected without alignment, and
 * a first look at `PEEK` characters with a looser bound rejects unrelated texts at a small
 * fraction of the full cost. Cost: alignments of at most 2·`window` + `PEEK` characters.
 */
export function editNear(a: string, b: string, maxRate: number, window = 512): boolean {
  const la = a.length;
  const lb = b.length;
  const longer = Math.max(la, lb);
  if (longer === 0) return true;
  if (Math.abs(la - lb) > maxRate * longer) return false;
  if (window > PEEK && longer > PEEK) {
    if (levenshtein(a.slice(0, PEEK), b.slice(0, PEEK)) > (maxRate + PEEK_SLACK) * PEEK) return false;
  }
  // Windows cover the same fraction of both texts (the longer's first `window` characters),
  // so a copy whose edits made it a little longer is not compared against a shifted window.
  const f = Math.min(1, window / longer);
  const wa = Math.round(f * la);
  const wb = Math.round(f * lb);
  const pieces = halves(a.slice(0, wa), b.slice(0, wb));
  if (longer > window) pieces.push(...halves(a.slice(la - wa), b.slice(lb - wb)));
  let dist = 0;
  let len = 0;
  for (const [x, y] of pieces) {
    const l = Math.max(x.length, y.length);
    const d = levenshtein(x, y);
    if (d > (maxRate + PIECE_SLACK) * l) return false;
    dist += d;
    len += l;
  }
  return dist <= maxRate * len;
}

/** The first and second halves of two texts, each cut at half its own length. */
function halves(x: string, y: string): [string, string][] {
  const hx = x.length >> 1;
  const hy = y.length >> 1;
  return [
    [x.slice(0, hx), y.slice(0, hy)],
    [x.slice(hx), y.slice(hy)],
  ];
}

/** Characters of the first look, and how much looser its bound is than `maxRate`. */
const PEEK = 64;
const PEEK_SLACK = 0.2;
/** How much looser the bound of one half is than `maxRate`. */
const PIECE_SLACK = 0.1;
