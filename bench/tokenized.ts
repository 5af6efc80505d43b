/**
 * bench:tokenized — what server-side tokenization costs.
 *
 * 1. Serving: one mixflow server, two runs of the same shape (512 windows of 1,024 uint16
 *    tokens per batch, 4 domains): "pre" over pre-tokenized .bin files, "tok" over the
 *    corpus's JSONL tokenized by tiktoken gpt2 at index time and packed. Streamed
 *    alternately (StreamBatches, as bench:serve); `serve_ratio` = best tok / best pre.
 * 2. Indexing throughput: MB/s of JSONL text turned into packed tokens by one worker
 *    thread (the CreateRun path, runJobs), for the HF tokenizer.json fixture and for
 *    tiktoken gpt2; baseline: the Python `tokenizers` package on the same file and
 *    tokenizer, single-threaded (encode per document) and batched (encode_batch, Rust
 *    threads), same text bytes.
 *
 * Usage: npm run bench:tokenized [-- corpus-file.jsonl]; PYTHON=<python with tokenizers>.
 * Last line: one JSON object.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { MixflowClient } from "../src/client/index.js";
import { makeJob } from "../src/tokenize/jobs.js";
import { runJobs } from "../src/tokenize/prepare.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "..");
const MiB = 1 << 20;
const BATCHES = Number(process.env.BENCH_BATCHES ?? 200);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CORPUS = process.env.MIXFLOW_CORPUS ?? "/work/shared/corpus";
const TOKENIZER = path.join(root, "test/fixtures/data17/tokenizer.json");

function startChild(args: string[]): Promise<{ child: ChildProcess; line: Record<string, unknown> }> {
  const child = spawn(process.execPath, ["--import", "tsx", ...args], { cwd: root, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    let buf = "";
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve({ child, line: JSON.parse(buf.slice(0, nl)) as Record<string, unknown> });
    });
    child.on("exit", (c) => reject(new Error(`child exited with ${c}`)));
  });
}

async function stream(addr: string, runId: string): Promise<number> {
  const c = new MixflowClient(addr);
  const call = c.streamBatchesRaw({ runId, fromStep: Math.floor(Math.random() * 1e5), maxBatches: BATCHES, prefetch: 4 });
  let bytes = 0;
  const t0 = performance.now();
  for await (const m of call) bytes += (m as { tokens: { data: Buffer } }).tokens.data.length;
  const s = (performance.now() - t0) / 1000;
  c.close();
  return bytes / MiB / s;
}

async function indexing(file: string, tokenizer: { kind: "hf" | "tiktoken"; name: string }): Promise<number> {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-tokbench-"));
  try {
    const job = makeJob({ file, format: "jsonl", field: "text" }, "tokens", cacheDir, tokenizer, "uint32");
    const t0 = performance.now();
    await runJobs([job], undefined, 1);
    const s = (performance.now() - t0) / 1000;
    return s;
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}

function textBytes(file: string): number {
  let n = 0;
  for (const l of fs.readFileSync(file, "utf8").split("\n")) if (l.trim()) n += Buffer.byteLength((JSON.parse(l) as { text: string }).text, "utf8");
  return n;
}

function pythonBaseline(file: string): { single_s: number; batch_s: number } {
  const py = process.env.PYTHON ?? path.join(root, ".venv/bin/python");
  const code = `
import json, sys, time
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
docs = [json.loads(l)["text"] for l in open(sys.argv[2], encoding="utf-8") if l.strip()]
t0 = time.perf_counter()
for d in docs: tok.encode(d, add_special_tokens=False)
t1 = time.perf_counter()
tok.encode_batch(docs, add_special_tokens=False)
t2 = time.perf_counter()
print(json.dumps({"single_s": t1 - t0, "batch_s": t2 - t1}))
`;
  const r = spawnSync(py, ["-c", code, TOKENIZER, file], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`Python baseline failed (needs a python with the tokenizers package: set PYTHON): ${r.stderr.slice(-400)}`);
  return JSON.parse(r.stdout.trim().split("\n").pop()!) as { single_s: number; batch_s: number };
}

async function main(): Promise<void> {
  const file = process.argv[2] ?? path.join(CORPUS, "fortunes_en/train.jsonl");
  const bytes = textBytes(file);
  const hfS = await indexing(file, { kind: "hf", name: TOKENIZER });
  const tkS = await indexing(file, { kind: "tiktoken", name: "gpt2" });
  const py = pythonBaseline(file);
  const mb = bytes / 1e6;
  console.log(`indexing ${file} (${mb.toFixed(2)} MB of text): tokenizer.json ${(mb / hfS).toFixed(2)} MB/s, tiktoken gpt2 ${(mb / tkS).toFixed(2)} MB/s; Python tokenizers ${(mb / py.single_s).toFixed(2)} MB/s single, ${(mb / py.batch_s).toFixed(2)} MB/s encode_batch`);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-bench-"));
  const names = ["fortunes_en", "fortunes_de", "code_python", "changelogs"];
  const pre = names.map((n, i) => {
    const p = path.join(dir, `${n}.bin`);
    const a = new Uint16Array(2 * MiB);
    for (let k = 0; k < a.length; k++) a[k] = ((k + i) * 2654435761) >>> 17;
    fs.writeFileSync(p, Buffer.from(a.buffer));
    return { name: n, train: { format: "tokens", paths: [p], dtype: "uint16" } };
  });
  const tok = names.map((n) => ({ name: n, train: { format: "jsonl", paths: [path.join(CORPUS, n, "train.jsonl")] } }));
  const cfgPath = path.join(dir, "mixflow.json");
  fs.writeFileSync(
    cfgPath,
    JSON.stringify({
      dataDir: path.join(dir, "state"),
      listen: "127.0.0.1:0",
      metrics: { enabled: false },
      journal: { durability: "none" },
      runs: [
        { id: "pre", batchSize: 512, seqLen: 1023, seed: 1, domains: pre },
        { id: "tok", batchSize: 512, seqLen: 1023, seed: 1, tokenizer: "tiktoken:gpt2", domains: tok },
      ],
    }),
  );
  const mix = await startChild(["src/cli/main.ts", "serve", "--config", cfgPath]);
  const addr = mix.line.grpc as string;
  try {
    await stream(addr, "pre");
    await stream(addr, "tok");
    let bestPre = 0;
    let bestTok = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? ["pre", "tok"] : ["tok", "pre"];
      const got: Record<string, number> = {};
      for (const id of order) got[id] = await stream(addr, id);
      console.log(`round ${r + 1}: pre-tokenized ${got.pre!.toFixed(0)} MB/s, tokenized ${got.tok!.toFixed(0)} MB/s, ratio ${(got.tok! / got.pre!).toFixed(2)}`);
      bestPre = Math.max(bestPre, got.pre!);
      bestTok = Math.max(bestTok, got.tok!);
    }
    console.log(
      JSON.stringify({
        pre_MBps: Number(bestPre.toFixed(1)),
        tokenized_MBps: Number(bestTok.toFixed(1)),
        serve_ratio: Number((bestTok / bestPre).toFixed(3)),
        index_text_MB: Number(mb.toFixed(2)),
        index_hf_MBps: Number((mb / hfS).toFixed(2)),
        index_tiktoken_MBps: Number((mb / tkS).toFixed(2)),
        python_tokenizers_single_MBps: Number((mb / py.single_s).toFixed(2)),
        python_tokenizers_batch_MBps: Number((mb / py.batch_s).toFixed(2)),
        hf_vs_python_single: Number((py.single_s / hfS).toFixed(3)),
      }),
    );
  } finally {
    mix.child.kill("SIGTERM");
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
