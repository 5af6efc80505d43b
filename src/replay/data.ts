/**
 * A recorded run's data as it is now, opened offline (no server) for `replay verify --data`
 * and for the difficulty orders of curriculum runs. Index caches go to a scratch folder,
 * never into the server's data dir.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { closeLoaded, loadDomains, type LoadedDomain } from "../runs/domains.js";
import type { RunHistory } from "./history.js";

/** Open the run's domains from `baseDir` (what its relative paths resolve against), call `use`, close them. */
export function withRunData<T>(h: RunHistory, baseDir: string, use: (domains: LoadedDomain[]) => T): T {
  const cacheDir = fs.mkdtempSync(path.join(os.tmpdir(), "mixflow-replay-"));
  try {
    const domains = loadDomains(h.config, { cacheDir, baseDir });
    try {
      return use(domains);
    } finally {
      for (const d of domains) closeLoaded(d);
    }
  } finally {
    fs.rmSync(cacheDir, { recursive: true, force: true });
  }
}
