/**
 * The installed package's root directory (the one holding its package.json), found by
 * walking up from this file. Run-time files (proto/, package.json) are read from there, so
 * the same code works from the TypeScript sources (src/util/) and from the compiled JS of a
 * packed install (dist/src/util/), whose depth below the root differs.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import { internal } from "../errors.js";

function findRoot(start: string): string {
  for (let dir = start; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, "utf8")) as { name?: string }).name === "mixflow") return dir;
    if (path.dirname(dir) === dir) throw internal(`mixflow: no package.json of mixflow above ${start} (a broken install)`);
  }
}

export const PACKAGE_ROOT = findRoot(path.dirname(fileURLToPath(import.meta.url)));
