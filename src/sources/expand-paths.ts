/**
 * `paths` entries as users write them: plain files, directories (every file of the format
 * inside, recursively) and globs (`*`, `?`, `**`, `[abc]`). Expansion is sorted by path so
 * the sample order, and hence every batch, does not depend on directory listing order.
 * A HF `save_to_disk` folder (state.json next to .arrow shards) expands to its shards in
 * the order state.json lists them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { SourceError } from "./source.js";
import { jsonReason } from "./text-files.js";

/** File name endings that a directory of this format contributes. */
export const FORMAT_EXTENSIONS: Record<string, readonly string[]> = {
  jsonl: [".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".json.zst", ".ndjson"],
  parquet: [".parquet"],
  arrow: [".arrow"],
  tokens: [".bin"],
  megatron: [".idx"],
};

const GLOB = /[*?[]/;

export function expandPaths(entries: readonly string[], format: string): string[] {
  const out: string[] = [];
  for (const p of entries) {
    if (GLOB.test(p)) {
      const matches = globSync(p).flatMap((m) => (isDir(m) ? fromDirectory(m, format) : [m]));
      if (matches.length === 0) throw new SourceError(`${p}: no files match this pattern`);
      out.push(...matches);
    } else if (isDir(p)) {
      const files = fromDirectory(p, format);
      if (files.length === 0) {
        throw new SourceError(`${p}: directory has no ${format} files (looked for ${FORMAT_EXTENSIONS[format]!.join(", ")})`);
      }
      out.push(...files);
    } else {
      out.push(p);
    }
  }
  return out;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function fromDirectory(dir: string, format: string): string[] {
  const state = path.join(dir, "state.json");
  if (format === "arrow" && fs.existsSync(state)) return hfShards(dir, state);
  if (format === "arrow" && fs.existsSync(path.join(dir, "dataset_dict.json"))) {
    const splits = fs.readdirSync(dir).filter((s) => isDir(path.join(dir, s)));
    throw new SourceError(`${dir}: a HF DatasetDict (several splits); point paths at one split folder, e.g. ${path.join(dir, splits[0] ?? "train")}`);
  }
  const exts = FORMAT_EXTENSIONS[format] ?? [];
  const files: string[] = [];
  const walk = (d: string): void => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) walk(full);
      else if (e.isFile() && exts.some((x) => e.name.endsWith(x))) files.push(full);
    }
  };
  walk(dir);
  return files.sort();
}

function hfShards(dir: string, state: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(state, "utf8"));
  } catch (e) {
    // A syntax error's message quotes the input: name the file and the reason only.
    const why = e instanceof SyntaxError ? jsonReason(e) : (e as Error).message.split("\n")[0];
    throw new SourceError(`${state}: not a HF datasets state.json (${why})`);
  }
  const files = (parsed as { _data_files?: unknown } | null)?._data_files;
  if (!Array.isArray(files) || files.some((f) => typeof (f as { filename?: unknown } | null)?.filename !== "string")) {
    throw new SourceError(`${state}: not a HF datasets state.json (no _data_files list)`);
  }
  if (files.length === 0) throw new SourceError(`${state}: the dataset lists no data files`);
  return (files as { filename: string }[]).map((f) => path.join(dir, path.basename(f.filename)));
}

/** Minimal glob over the file system (Node 20 has no fs.globSync). */
export function globSync(pattern: string): string[] {
  const abs = path.resolve(pattern);
  const parts = abs.split(path.sep);
  let i = 0;
  while (i < parts.length && !GLOB.test(parts[i]!)) i++;
  const root = parts.slice(0, i).join(path.sep) || path.sep;
  const rest = parts.slice(i);
  const out: string[] = [];
  const walk = (dir: string, k: number): void => {
    if (k === rest.length) {
      out.push(dir);
      return;
    }
    const seg = rest[k]!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    if (seg === "**") {
      walk(dir, k + 1);
      for (const e of entries) if (e.isDirectory()) walk(path.join(dir, e.name), k);
      return;
    }
    const re = segmentRegex(seg);
    for (const e of entries) {
      if (!re.test(e.name)) continue;
      if (k + 1 < rest.length && !e.isDirectory()) continue;
      walk(path.join(dir, e.name), k + 1);
    }
  };
  walk(root, 0);
  return [...new Set(out)].sort();
}

function segmentRegex(seg: string): RegExp {
  let re = "";
  for (let i = 0; i < seg.length; i++) {
    const c = seg[i]!;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const j = seg.indexOf("]", i + 1);
      if (j < 0) re += "\\[";
      else {
        re += `[${seg.slice(i + 1, j).replace(/^!/, "^").replace(/\\/g, "\\\\")}]`;
        i = j;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}
