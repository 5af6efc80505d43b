/**
 * Loading the server config file (JSON) and applying command-line overrides. The result
 * is validated by the same schema as CreateRun, so a bad file fails at start with a
 * message that names the field.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { serverConfig, type ServerConfig } from "./schema.js";
import { parseJson, parseOrThrow } from "./validate.js";
import { invalid, notFound } from "../errors.js";

/** Largest config file accepted (a run list with 100k domains still fits). */
const MAX_CONFIG_FILE = 64 * 1024 * 1024;

export interface LoadedConfig {
  config: ServerConfig;
  /** Directory that relative paths in the config resolve against. */
  baseDir: string;
}

export function loadServerConfig(file: string | undefined, overrides: Record<string, unknown> = {}): LoadedConfig {
  let raw: Record<string, unknown> = {};
  let baseDir = process.cwd();
  if (file) {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw notFound(`config file ${file} not found`);
    }
    if (st.size > MAX_CONFIG_FILE) throw invalid(`config file ${file} is ${st.size} bytes, above the ${MAX_CONFIG_FILE}-byte limit`);
    const parsed = parseJson(fs.readFileSync(file, "utf8"), `config file ${file}`);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw invalid(`config file ${file}: expected a JSON object`);
    raw = parsed as Record<string, unknown>;
    baseDir = path.dirname(path.resolve(file));
  }
  const merged = deepMerge(raw, overrides);
  return { config: parseOrThrow(serverConfig, merged, file ? `config file ${file}` : "config"), baseDir };
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    const cur = out[k];
    out[k] =
      v && typeof v === "object" && !Array.isArray(v) && cur && typeof cur === "object" && !Array.isArray(cur)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
