/**
 * Opening a domain's split from its config: the one place that maps config to source
 * classes, and turns source errors into INVALID_ARGUMENT naming the domain and file.
 */
import * as path from "node:path";
import type { SourceConfig } from "../config/schema.js";
import { invalid } from "../errors.js";
import { JsonlSource } from "./jsonl-source.js";
import { TokenSource } from "./token-source.js";
import { SourceError, type Source } from "./source.js";

export interface OpenContext {
  /** Where index caches go (`<dataDir>/index`). */
  readonly cacheDir: string;
  /** Relative paths in configs resolve against this directory. */
  readonly baseDir: string;
  readonly seqLen: number;
}

export function openSource(cfg: SourceConfig, ctx: OpenContext, where: string): Source {
  const resolve = (p: string): string => path.resolve(ctx.baseDir, p);
  try {
    if (cfg.format === "jsonl") {
      return new JsonlSource({
        paths: cfg.paths.map(resolve),
        textField: cfg.textField,
        difficultyField: cfg.difficultyField,
        difficultyFile: cfg.difficultyFile ? resolve(cfg.difficultyFile) : undefined,
        cacheDir: ctx.cacheDir,
      });
    }
    return new TokenSource({
      paths: cfg.paths.map(resolve),
      dtype: cfg.dtype,
      mode: cfg.mode,
      seqLen: ctx.seqLen,
      eosToken: cfg.eosToken,
      indexPaths: cfg.indexPaths?.map(resolve),
      difficultyFile: cfg.difficultyFile ? resolve(cfg.difficultyFile) : undefined,
      cacheDir: ctx.cacheDir,
    });
  } catch (e) {
    if (e instanceof SourceError) throw invalid(`${where}: ${e.message}`);
    throw e;
  }
}
