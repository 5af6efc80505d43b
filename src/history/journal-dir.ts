/**
 * The one answer to "where is the journal": a server keeps it in `<dataDir>/journal`;
 * offline tools (replay, report) accept either that data dir or the journal folder itself.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { notFound } from "../errors.js";

/** The journal folder of a server's data dir (where the server writes it). */
export function serverJournalDir(dataDir: string): string {
  return path.join(dataDir, "journal");
}

const hasSegments = (d: string): boolean => fs.existsSync(d) && fs.statSync(d).isDirectory() && fs.readdirSync(d).some((f) => f.endsWith(".seg"));

/**
 * The journal folder for a path given by a user: the folder itself when it holds segments,
 * else its `journal/` subfolder when that does; NOT_FOUND naming both otherwise.
 */
export function resolveJournalDir(dir: string): string {
  const sub = serverJournalDir(dir);
  if (hasSegments(dir)) return dir;
  if (hasSegments(sub)) return sub;
  throw notFound(`no journal segments in ${dir} or ${sub}: pass the server's data dir or its journal/ folder`);
}
