/**
 * Generates the demo dataset in examples/demo/data/: five small domains of different
 * learnability, each with a train and an eval split, deterministic from a fixed seed.
 *
 *   prose       English-like sentences from a small grammar (learnable, varied)
 *   code        Python-like functions (learnable, structured)
 *   arithmetic  "a op b = c" lines (learnable, very regular)
 *   logs        JSON-ish service log lines (learnable, repetitive)
 *   noise       base64 of random bytes (unlearnable: a good mixer should starve it)
 *
 * Run: npx tsx examples/demo/make-data.ts
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const out = path.join(path.dirname(fileURLToPath(import.meta.url)), "data");

let state = 0x12345678;
function rand(): number {
  state ^= state << 13;
  state >>>= 0;
  state ^= state >>> 17;
  state ^= state << 5;
  state >>>= 0;
  return state / 4294967296;
}
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
const int = (a: number, b: number): number => a + Math.floor(rand() * (b - a + 1));

const NOUNS = ["river", "teacher", "machine", "garden", "city", "engine", "letter", "window", "forest", "student", "market", "signal"];
const VERBS = ["watches", "builds", "finds", "carries", "opens", "follows", "paints", "measures", "remembers", "answers"];
const ADJS = ["quiet", "bright", "old", "rapid", "careful", "distant", "small", "golden", "honest", "strange"];
const ADVS = ["slowly", "again", "today", "often", "gladly", "rarely", "at night", "by the sea"];

function prose(): string {
  const sentences = int(2, 6);
  const parts: string[] = [];
  for (let i = 0; i < sentences; i++) {
    parts.push(`The ${pick(ADJS)} ${pick(NOUNS)} ${pick(VERBS)} the ${pick(NOUNS)} ${pick(ADVS)}.`);
  }
  return parts.join(" ");
}

function code(): string {
  const name = `${pick(["load", "parse", "count", "merge", "score", "find"])}_${pick(NOUNS)}`;
  const arg = pick(["items", "text", "values", "rows"]);
  const body = [
    `def ${name}(${arg}):`,
    `    result = ${pick(["[]", "0", "{}", "None"])}`,
    `    for x in ${arg}:`,
    `        if x ${pick(["<", ">", "==", "!="])} ${int(0, 9)}:`,
    `            result = ${pick(["result + x", "x", "max(result, x)", "min(result, x)"])}`,
    `    return result`,
  ];
  return body.join("\n");
}

function arithmetic(): string {
  const lines: string[] = [];
  for (let i = 0; i < int(3, 8); i++) {
    const a = int(0, 99);
    const b = int(0, 99);
    const op = pick(["+", "-", "*"]);
    const c = op === "+" ? a + b : op === "-" ? a - b : a * b;
    lines.push(`${a} ${op} ${b} = ${c}`);
  }
  return lines.join("\n");
}

function logs(): string {
  const lines: string[] = [];
  for (let i = 0; i < int(2, 5); i++) {
    lines.push(
      `{"level":"${pick(["info", "warn", "error"])}","svc":"${pick(["api", "db", "cache"])}","msg":"${pick(["request done", "slow query", "cache miss", "retrying"])}","ms":${int(1, 900)}}`,
    );
  }
  return lines.join("\n");
}

function noise(): string {
  const b = Buffer.alloc(int(120, 300));
  for (let i = 0; i < b.length; i++) b[i] = Math.floor(rand() * 256);
  return b.toString("base64");
}

const DOMAINS: Record<string, () => string> = { prose, code, arithmetic, logs, noise };

fs.mkdirSync(out, { recursive: true });
for (const [name, gen] of Object.entries(DOMAINS)) {
  for (const [split, n] of [
    ["train", 1500],
    ["eval", 100],
  ] as const) {
    const lines: string[] = [];
    for (let i = 0; i < n; i++) lines.push(JSON.stringify({ id: `${name}-${split}-${i}`, text: gen() }));
    fs.writeFileSync(path.join(out, `${name}.${split}.jsonl`), lines.join("\n") + "\n");
  }
}
process.stdout.write(`wrote ${Object.keys(DOMAINS).length} domains to ${out}\n`);
