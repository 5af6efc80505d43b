/**
 * The source formats users have, read from fixtures written by the real writers
 * (test/fixtures/make-data17.py: pyarrow, datasets, gzip, zstandard, tokenizers, Megatron's
 * index layout), and the refusals: each names the file and says why.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { sourceConfig } from "../../src/config/schema.js";
import { openSource, prepareSource, type OpenContext } from "../../src/runs/open-source.js";
import type { Source } from "../../src/sources/source.js";
import { loadTokenizer } from "../../src/tokenize/tokenizer.js";
import { tmpDir } from "../helpers/fixtures.js";

const FIX = path.resolve(import.meta.dirname, "../fixtures/data17");

function ctx(over: Partial<OpenContext> = {}): OpenContext {
  return { cacheDir: path.join(tmpDir(), "index"), baseDir: FIX, seqLen: 32, ...over };
}
function open(cfg: unknown, c = ctx()): Source {
  return openSource(sourceConfig.parse(cfg), c, "domains[0] (\"x\").train");
}
function texts(s: Source): string[] {
  return Array.from({ length: s.size }, (_, i) => s.payload(i).toString("utf8"));
}
function refusal(cfg: unknown, c = ctx()): string {
  try {
    open(cfg, c).close();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error("expected a refusal");
}

describe("text sources", () => {
  it("reads .jsonl.gz (same documents as Node's gunzip of the file) and .jsonl.zst", () => {
    const gz = open({ format: "jsonl", paths: ["code.jsonl.gz"] });
    const want = zlib.gunzipSync(fs.readFileSync(path.join(FIX, "code.jsonl.gz"))).toString("utf8").trim().split("\n").map((l) => (JSON.parse(l) as { text: string }).text);
    expect(texts(gz)).toEqual(want);
    expect(gz.size).toBe(120);
    const zst = open({ format: "jsonl", paths: ["german.jsonl.zst"] });
    expect(zst.size).toBe(120);
    expect(texts(zst).every((t) => t.length > 0)).toBe(true);
  });

  it("reads Parquet by column name across row groups, Arrow IPC files and HF save_to_disk folders", async () => {
    const pq = open({ format: "parquet", paths: ["fortunes.parquet"], textColumn: "content" });
    expect(pq.size).toBe(120); // 3 row groups of <= 50 rows
    const hf = open({ format: "arrow", paths: ["spanish_hf"] });
    const file = open({ format: "arrow", paths: ["spanish.arrow"] });
    expect(hf.size).toBe(120);
    expect(file.size).toBe(60);
    // Two writers (datasets' stream shards, pyarrow's file format) agree on the same rows.
    expect(texts(file)).toEqual(texts(hf).slice(0, 60));
    // The async (CreateRun) path leaves a cache the blocking open then reuses.
    const c = ctx();
    const cfg = sourceConfig.parse({ format: "parquet", paths: ["fortunes.parquet"], textColumn: "content" });
    await prepareSource(cfg, c, "w");
    const entries = fs.readdirSync(c.cacheDir).filter((f) => f.endsWith(".json")).length;
    expect(texts(openSource(cfg, c, "w"))).toEqual(texts(pq));
    expect(fs.readdirSync(c.cacheDir).filter((f) => f.endsWith(".json")).length).toBe(entries);
  });

  it("expands directories and globs in paths, sorted", () => {
    const dir = tmpDir();
    for (const n of ["b", "a", "c"]) fs.writeFileSync(path.join(dir, `${n}.jsonl`), JSON.stringify({ text: n }) + "\n");
    fs.mkdirSync(path.join(dir, "sub"));
    fs.writeFileSync(path.join(dir, "sub", "d.jsonl"), JSON.stringify({ text: "d" }) + "\n");
    fs.writeFileSync(path.join(dir, "notes.txt"), "not data");
    const c = ctx({ baseDir: dir });
    expect(texts(open({ format: "jsonl", paths: ["."] }, c))).toEqual(["a", "b", "c", "d"]);
    expect(texts(open({ format: "jsonl", paths: ["[ab].jsonl", "**/d.jsonl"] }, c))).toEqual(["a", "b", "d"]);
    expect(refusal({ format: "jsonl", paths: ["*.parquet"] }, c)).toMatch(/\*\.parquet: no files match/);
    fs.mkdirSync(path.join(dir, "empty"));
    expect(refusal({ format: "jsonl", paths: ["empty"] }, c)).toMatch(/empty: directory has no jsonl files/);
  });
});

describe("Megatron .bin/.idx", () => {
  it("documents mode: one sample per document of the index, each ending in the EOD token", () => {
    const s = open({ format: "megatron", paths: ["licenses_text_document"], mode: "documents" });
    expect(s.size).toBe(25);
    expect(s.dtype).toBe("uint16");
    const bin = new Uint16Array(fs.readFileSync(path.join(FIX, "licenses_text_document.bin")).buffer.slice(0));
    let at = 0;
    for (let i = 0; i < s.size; i++) {
      const p = s.payload(i);
      const ids = new Uint16Array(p.buffer.slice(p.byteOffset, p.byteOffset + p.length));
      expect(ids[ids.length - 1]).toBe(0);
      expect(Array.from(ids)).toEqual(Array.from(bin.subarray(at, at + ids.length)));
      at += ids.length;
    }
    expect(at).toBe(bin.length);
    const w = open({ format: "megatron", paths: ["licenses_text_document.bin"] });
    expect(w.windowTokens).toBe(33);
    // Given as a token file's indexPaths, the Megatron index is recognised as one.
    const t = open({ format: "tokens", paths: ["licenses_text_document.bin"], mode: "documents", indexPaths: ["licenses_text_document.idx"] });
    expect(t.size).toBe(25);
  });

  it("refuses damaged or unsupported indexes naming the file and the field", () => {
    const dir = tmpDir();
    const idx = fs.readFileSync(path.join(FIX, "licenses_text_document.idx"));
    fs.copyFileSync(path.join(FIX, "licenses_text_document.bin"), path.join(dir, "m.bin"));
    const c = ctx({ baseDir: dir });
    fs.writeFileSync(path.join(dir, "m.idx"), idx.subarray(0, 100));
    expect(refusal({ format: "megatron", paths: ["m"] }, c)).toMatch(/m\.idx: Megatron index truncated: 25 sequences/);
    const f64 = Buffer.from(idx);
    f64[17] = 6;
    fs.writeFileSync(path.join(dir, "m.idx"), f64);
    expect(refusal({ format: "megatron", paths: ["m"] }, c)).toMatch(/m\.idx: Megatron dtype float64 \(code 6\) cannot be served/);
    fs.writeFileSync(path.join(dir, "m.idx"), Buffer.from("not an index at all"));
    expect(refusal({ format: "megatron", paths: ["m"] }, c)).toMatch(/m\.idx: not a Megatron-Core index/);
    fs.rmSync(path.join(dir, "m.idx"));
    expect(refusal({ format: "megatron", paths: ["m"] }, c)).toMatch(/m\.idx: Megatron index file not found/);
  });
});

describe("refused files are named with the reason", () => {
  it("compressed, wrong-format and damaged files", () => {
    const dir = tmpDir();
    const c = ctx({ baseDir: dir });
    const gz = zlib.gzipSync(Buffer.from('{"text": "a"}\n{"text": "b"}\n'.repeat(200)));
    fs.writeFileSync(path.join(dir, "cut.jsonl.gz"), gz.subarray(0, gz.length - 20));
    expect(refusal({ format: "jsonl", paths: ["cut.jsonl.gz"] }, c)).toMatch(/cut\.jsonl\.gz \(gzip-compressed\): the gzip data is damaged or truncated/);
    fs.writeFileSync(path.join(dir, "bad.jsonl.gz"), zlib.gzipSync(Buffer.from('{"text": "ok"}\n{"text": oops}\n')));
    expect(refusal({ format: "jsonl", paths: ["bad.jsonl.gz"] }, c)).toMatch(/bad\.jsonl\.gz \(gzip-compressed\):2: invalid JSON/);
    fs.copyFileSync(path.join(FIX, "fortunes.parquet"), path.join(dir, "p.jsonl"));
    expect(refusal({ format: "jsonl", paths: ["p.jsonl"] }, c)).toMatch(/p\.jsonl: not JSONL, this is a Parquet file \(use format: parquet\)/);
    expect(refusal({ format: "parquet", paths: [path.join(FIX, "fortunes.parquet")] }, c)).toMatch(/fortunes\.parquet: no column "text" \(columns: id, content\); set textColumn/);
    fs.copyFileSync(path.join(FIX, "code.jsonl.gz"), path.join(dir, "x.parquet"));
    expect(refusal({ format: "parquet", paths: ["x.parquet"] }, c)).toMatch(/x\.parquet: not a readable Parquet file/);
    expect(refusal({ format: "arrow", paths: [path.join(FIX, "spanish_hf")], textColumn: "body" }, c)).toMatch(/data-00000-of-00001\.arrow: no column "body" \(columns: text, n\)/);
  });
});

describe("tokenizer.json", () => {
  it("token ids match the Python tokenizers package on the same texts", async () => {
    const exp = JSON.parse(fs.readFileSync(path.join(FIX, "expected.json"), "utf8")) as { eos: number; samples: { text: string; ids: number[] }[] };
    const tok = await loadTokenizer({ kind: "hf", name: path.join(FIX, "tokenizer.json") });
    expect(tok.eos).toBe(exp.eos);
    expect(exp.samples.length).toBeGreaterThan(40);
    for (const s of exp.samples) expect(tok.encode(s.text)).toEqual(s.ids);
  });
});
