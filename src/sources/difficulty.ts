/**
 * Per-sample difficulty from a scores file: one finite number per line, aligned with the
 * split's samples in order. Lower is easier.
 */
import * as fs from "node:fs";
import { SourceError } from "./source.js";

export function readDifficultyFile(file: string, expected: number): Float64Array {
  if (!fs.existsSync(file)) throw new SourceError(`${file}: difficulty file not found`);
  const lines = fs.readFileSync(file, "utf8").split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  if (lines.length !== expected) {
    throw new SourceError(`${file}: has ${lines.length} scores but the split has ${expected} samples`);
  }
  const out = new Float64Array(expected);
  lines.forEach((l, i) => {
    const v = Number(l.trim());
    if (l.trim() === "" || !Number.isFinite(v)) throw new SourceError(`${file}:${i + 1}: not a finite number`);
    out[i] = v;
  });
  return out;
}

/** Sample indices sorted by difficulty (ties by index), for competence-based curricula. */
export function difficultyOrder(d: Float64Array): Uint32Array {
  const idx = new Uint32Array(d.length);
  for (let i = 0; i < idx.length; i++) idx[i] = i;
  idx.sort((a, b) => d[a]! - d[b]! || a - b);
  return idx;
}
