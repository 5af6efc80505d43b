import { describe, expect, it } from "vitest";
import { editNear, levenshtein } from "../../src/sources/edit-distance.js";
import { makeRng } from "../../strategies/util/rng.js";
import { edited } from "../sim/text.js";

/** The textbook dynamic programme, the reference for the bit-vector algorithm. */
function reference(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1), prev[j]! + 1, cur[j - 1]! + 1);
    prev = cur;
  }
  return prev[b.length]!;
}

function randomText(r: () => number, length: number, alphabet: string): string {
  return Array.from({ length }, () => alphabet[Math.floor(r() * alphabet.length)]).join("");
}


const WORDS = "the of and a to in is you that it he was for on are as with his they at be this have from or one had by word but not what all were we when your can said there use an each which she do how their if will up other about out many then them these so some her would make like him into time has look two more write go see number no way could people my than first water been call who oil its now find long down day did get come made may part".split(" ");
function english(seed: number, words: number): string {
  const r = makeRng(seed, 5);
  return Array.from({ length: words }, () => WORDS[Math.floor(WORDS.length * r() * r())]).join(" ");
}

describe("levenshtein", () => {
  it("known values", () => {
    expect(levenshtein("kitten", "sitting")).toBe(3);
    expect(levenshtein("", "abc")).toBe(3);
    expect(levenshtein("abc", "")).toBe(3);
    expect(levenshtein("same", "same")).toBe(0);
    expect(levenshtein("a".repeat(100), "b".repeat(70))).toBe(100);
  });

  it("equals the dynamic programme on random texts across block boundaries (lengths 0–150)", () => {
    const r = makeRng(1, 2);
    for (let k = 0; k < 400; k++) {
      const alphabet = "abcdeé漢".slice(0, 2 + Math.floor(r() * 6));
      const a = randomText(r, Math.floor(r() * 150), alphabet);
      const b = randomText(r, Math.floor(r() * 150), alphabet);
      expect(levenshtein(a, b)).toBe(reference(a, b));
    }
  });
});

describe("editNear", () => {
  it("joins copies with 10 % character edits, long and short", () => {
    for (let s = 0; s < 20; s++) {
      const long = english(s, 300);
      expect(editNear(edited(long, 0.1, 2 * s), edited(long, 0.1, 2 * s + 1), 0.3)).toBe(true);
      const short = english(100 + s, 40);
      expect(editNear(short, edited(short, 0.1, s), 0.3)).toBe(true);
    }
  });

  it("rejects unrelated text of the same vocabulary", () => {
    for (let s = 0; s < 20; s++) {
      expect(editNear(english(s, 300), english(1000 + s, 300), 0.3)).toBe(false);
      expect(editNear(english(s, 40), english(1000 + s, 40), 0.3)).toBe(false);
    }
  });

  it("rejects texts that share only one part: a header, or an attribution line", () => {
    const header = english(7, 120);
    expect(editNear(`${header} ${english(8, 300)}`, `${header} ${english(9, 300)}`, 0.3)).toBe(false);
    const sign = "\n\t\t-- Heráclito de Efeso. (535-475 A.C.) Filósofo griego.";
    expect(editNear(`Los asnos prefieren la paja al oro.${sign}`, `El sol tiene el tamaño de un pie humano.${sign}`, 0.3)).toBe(false);
  });

  it("rejects texts of very different lengths without aligning them", () => {
    const t = english(3, 100);
    expect(editNear(t, t + t, 0.3)).toBe(false);
    expect(editNear("", "", 0.3)).toBe(true);
  });
});
