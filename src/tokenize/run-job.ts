/**
 * Running one index-time job (see jobs.ts): read the documents, tokenize them (or keep the
 * text), stream the result to temp files, then rename into place and write the meta last.
 * Runs inside a worker thread (worker-main.ts); nothing here touches the event loop of the
 * server's main thread.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { readDocuments, SourceError } from "../sources/index.js";
import type { JobMeta, PrepareJob } from "./jobs.js";
import { loadTokenizer } from "./tokenizer.js";

const FLUSH_TOKENS = 1 << 20;

export async function runJob(job: PrepareJob, onProgress: (done: number, total: number) => void): Promise<JobMeta> {
  fs.mkdirSync(path.dirname(job.out), { recursive: true });
  const tmp = `.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  const tok = job.kind === "tokens" ? await loadTokenizer(job.tokenizer!) : null;
  const dtype = job.dtype ?? "uint32";
  if (tok && dtype === "uint16" && tok.vocabSize > 65536) {
    throw new SourceError(`${job.tokenizer!.name}: vocabulary of ${tok.vocabSize} ids does not fit the run's uint16 tokens`);
  }
  const mainPath = `${job.out}${job.kind === "tokens" ? ".tok" : ".docs"}`;
  const fd = fs.openSync(mainPath + tmp, "w");
  const offsets: number[] = [0];
  let docs = 0;
  let textBytes = 0;
  let tokens = 0;
  let written = 0;
  const buf = dtype === "uint16" ? new Uint16Array(FLUSH_TOKENS + 1) : new Uint32Array(FLUSH_TOKENS + 1);
  let fill = 0;
  const flush = (): void => {
    if (fill === 0) return;
    fs.writeSync(fd, new Uint8Array(buf.buffer, 0, fill * buf.BYTES_PER_ELEMENT));
    fill = 0;
  };
  try {
    for await (const batch of readDocuments(job, onProgress)) {
      for (const text of batch) {
        docs++;
        const bytes = Buffer.byteLength(text, "utf8");
        textBytes += bytes;
        if (!tok) {
          fs.writeSync(fd, text, null, "utf8");
          written += bytes;
          offsets.push(written);
          continue;
        }
        const ids = tok.encode(text);
        for (let k = 0; k <= ids.length; k++) {
          buf[fill++] = k < ids.length ? ids[k]! : tok.eos;
          if (fill >= FLUSH_TOKENS) flush();
        }
        tokens += ids.length + 1;
      }
    }
    flush();
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(mainPath + tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  if (docs === 0) {
    fs.rmSync(mainPath + tmp, { force: true });
    throw new SourceError(`${job.file}: no documents`);
  }
  fs.renameSync(mainPath + tmp, mainPath);
  if (!tok) {
    const off = Float64Array.from(offsets);
    fs.writeFileSync(`${job.out}.off${tmp}`, new Uint8Array(off.buffer));
    fs.renameSync(`${job.out}.off${tmp}`, `${job.out}.off`);
  }
  const meta: JobMeta = { docs, textBytes, tokens, eos: tok?.eos ?? null, vocabSize: tok?.vocabSize ?? null };
  fs.writeFileSync(`${job.out}.json${tmp}`, JSON.stringify(meta));
  fs.renameSync(`${job.out}.json${tmp}`, `${job.out}.json`);
  return meta;
}
