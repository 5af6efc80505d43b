/**
 * Mixed formats in one run: the README's minimal config (a JSONL text domain next to a
 * uint16 token .bin domain) serves token batches, its text tokenized by the default
 * tiktoken gpt2 and packed into seqLen + 1 windows with EOS between documents.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { getEncoding } from "js-tiktoken";
import { startServer, tmpDir, type TestServer } from "../helpers/fixtures.js";
import { serverConfig } from "../../src/config/schema.js";
import { RunRegistry } from "../../src/runs/registry.js";
import { createLogger } from "../../src/util/log.js";

let ts: TestServer | null = null;
afterEach(async () => {
  await ts?.stop();
  ts = null;
});

function writeReadmeData(dir: string): string[] {
  const docs = Array.from({ length: 40 }, (_, i) => `web page ${i}: ${"lorem ipsum dolor ".repeat(1 + (i % 5))}end ${i}.`);
  fs.writeFileSync(path.join(dir, "web.jsonl"), docs.map((t) => JSON.stringify({ text: t })).join("\n") + "\n");
  fs.writeFileSync(path.join(dir, "web.val.jsonl"), docs.slice(0, 8).map((t) => JSON.stringify({ text: `val ${t}` })).join("\n") + "\n");
  const code = new Uint16Array(20_000);
  for (let i = 0; i < code.length; i++) code[i] = 60_000 + (i % 1000);
  fs.writeFileSync(path.join(dir, "code.bin"), new Uint8Array(code.buffer));
  return docs;
}

describe("mixed formats in one run", () => {
  it("the README's minimal config (JSONL + token .bin) serves token windows; text is tokenized with gpt2 and packed", async () => {
    const dir = tmpDir();
    const docs = writeReadmeData(dir);
    const run = {
      id: "my-run",
      batchSize: 8, worldSize: 2, seed: 1, maxSteps: 100, seqLen: 64,
      strategy: { name: "mixflow" },
      domains: [
        { name: "web", train: { format: "jsonl", paths: ["web.jsonl"] }, eval: { format: "jsonl", paths: ["web.val.jsonl"] } },
        { name: "code", train: { format: "tokens", paths: ["code.bin"], dtype: "uint16", mode: "windows" } },
      ],
    };
    ts = await startServer(dir, [run]);
    const info = await ts.client.getRun("my-run");
    expect(info.payload).toBe("tokens");
    const enc = getEncoding("gpt2");
    const stream: number[] = [];
    for (const t of docs) stream.push(...enc.encode(t), 50256);
    const webWindows = Math.ceil(stream.length / 64);
    const seen = new Set<number>();
    for (let step = 0; step < 6; step++) {
      const b = await ts.client.nextBatch("my-run", step, 0, 1);
      expect(b.tokens!.dtype).toBe("uint16");
      expect(b.tokens!.shape).toEqual([8, 65]);
      for (let i = 0; i < b.slots; i++) {
        const row = Array.from(b.tokens!.data.subarray(i * 65, (i + 1) * 65));
        const sample = Number(b.slotSamples[i]);
        if (b.slotDomains[i] === 1) {
          // A window of the .bin (sample ids index the carved-holdout view under mixflow).
          for (let k = 1; k < 65; k++) expect(row[k]).toBe(60_000 + ((row[k - 1]! - 60_000 + 1) % 1000));
          continue;
        }
        seen.add(sample);
        expect(sample).toBeLessThan(webWindows);
        const want = Array.from({ length: 65 }, (_, k) => stream[(sample * 64 + k) % stream.length]);
        expect(row).toEqual(want);
      }
    }
    expect(seen.size).toBeGreaterThan(3);
  });

  it("a run naming a tokenizer turns an all-text run into a token run; text runs stay text", async () => {
    const dir = tmpDir();
    writeReadmeData(dir);
    const text = { id: "t", batchSize: 4, domains: [{ name: "web", train: { format: "jsonl", paths: ["web.jsonl"] } }] };
    const tok = { ...text, id: "k", seqLen: 32, tokenizer: "tiktoken:cl100k_base" };
    ts = await startServer(dir, [text, tok]);
    expect((await ts.client.getRun("t")).payload).toBe("text");
    expect((await ts.client.getRun("k")).payload).toBe("tokens");
    const b = await ts.client.nextBatch("k", 0, 0, 1);
    expect(b.tokens!.dtype).toBe("uint32");
    expect(b.tokens!.shape).toEqual([4, 33]);
  });

  it("token domains in documents mode next to text are refused with what to change", async () => {
    const dir = tmpDir();
    writeReadmeData(dir);
    ts = await startServer(dir, []);
    const err = await ts.client
      .createRun({
        id: "d", batchSize: 4,
        domains: [
          { name: "web", train: { format: "jsonl", paths: ["web.jsonl"] } },
          { name: "code", train: { format: "tokens", paths: ["code.bin"], mode: "documents", eosToken: 60_999 } },
        ],
      })
      .then(() => null, (e: Error) => e);
    expect(err?.message).toMatch(/mode "windows"/);
  });

  it("a restarted server whose index cache was deleted re-tokenizes during recovery and serves the same batches", async () => {
    const dir = tmpDir();
    writeReadmeData(dir);
    const run = {
      id: "rec", batchSize: 6, seqLen: 16, seed: 3, tokenizer: path.resolve(import.meta.dirname, "../fixtures/data17/tokenizer.json"),
      domains: [
        { name: "web", train: { format: "jsonl", paths: ["web.jsonl"] } },
        { name: "pq", train: { format: "parquet", paths: [path.resolve(import.meta.dirname, "../fixtures/data17/fortunes.parquet")], textColumn: "content" } },
      ],
    };
    ts = await startServer(dir, [run]);
    const before = await Promise.all([0, 1, 7].map((s) => ts!.client.nextBatch("rec", s, 0, 1)));
    await ts.stop();
    ts = null;
    fs.rmSync(path.join(dir, "state", "index"), { recursive: true, force: true });
    ts = await startServer(dir, [run]);
    const after = await Promise.all([0, 1, 7].map((s) => ts!.client.nextBatch("rec", s, 0, 1)));
    for (let k = 0; k < 3; k++) {
      expect(Array.from(after[k]!.tokens!.data)).toEqual(Array.from(before[k]!.tokens!.data));
      expect(after[k]!.digest).toBe(before[k]!.digest);
    }
    expect(fs.readdirSync(path.join(dir, "state", "index")).some((f) => f.startsWith("tokens-") && f.endsWith(".tok"))).toBe(true);
  });

  it("logs progress while preparing, and warns when text falls back to the default tokenizer", async () => {
    const dir = tmpDir();
    writeReadmeData(dir);
    const domains = [
      { name: "web", train: { format: "jsonl", paths: ["web.jsonl"] } },
      { name: "code", train: { format: "tokens", paths: ["code.bin"] } },
    ];
    const lines: string[] = [];
    const config = serverConfig.parse({
      dataDir: "state", journal: { durability: "none" },
      runs: [{ id: "dflt", batchSize: 4, seqLen: 16, domains }, { id: "named", batchSize: 4, seqLen: 16, tokenizer: "tiktoken:gpt2", domains }],
    });
    const reg = await RunRegistry.open({ config, baseDir: dir, logger: createLogger("info", (l) => lines.push(l)) });
    await reg.shutdown();
    const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    const warn = logs.filter((l) => l.msg === "text domains tokenized with the default tokenizer");
    expect(warn.map((w) => [w.run, w.domains])).toEqual([["dflt", "web"]]);
    expect(String(warn[0]!.detail)).toMatch(/tiktoken:gpt2/);
    const prog = logs.filter((l) => l.msg === "preparing data" && l.run === "dflt");
    expect(prog.at(-1)).toMatchObject({ domain: "web", filesDone: 1, filesTotal: 1 });
  });
});
