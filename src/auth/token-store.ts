/**
 * Durable digests of the run tokens CreateRun issued, so they keep working after a
 * restart. The file (`<dataDir>/auth/run-tokens.json`) holds SHA-256 digests only, never a
 * token; it is replaced atomically (write temp, fsync, rename, fsync the directory), so a
 * crash leaves the old or the new version, never a torn one.
 *
 * Not the journal: a token is a credential, not part of a run's replayable history, and
 * keeping it out of the journal keeps exports and replays free of anything secret-derived.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { precondition } from "../errors.js";

interface StoreFile {
  version: 1;
  /** Run id → hex SHA-256 of its token. */
  runs: Record<string, string>;
}

const HEX64 = /^[0-9a-f]{64}$/;

export class RunTokenStore {
  private readonly file: string;
  private readonly digests = new Map<string, string>();
  private writing: Promise<void> = Promise.resolve();

  private constructor(file: string) {
    this.file = file;
  }

  /** Open (or start) the store under `dir`; a malformed file is an error, not silently reset. */
  static open(dir: string): RunTokenStore {
    const store = new RunTokenStore(path.join(dir, "run-tokens.json"));
    let text: string | null = null;
    try {
      text = fs.readFileSync(store.file, "utf8");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
    if (text !== null) {
      const parsed = JSON.parse(text) as Partial<StoreFile>;
      if (parsed.version !== 1 || typeof parsed.runs !== "object" || parsed.runs === null) {
        throw precondition(`${store.file}: not a mixflow run-token file (expected {"version":1,"runs":{...}})`);
      }
      for (const [id, hex] of Object.entries(parsed.runs)) {
        if (typeof hex !== "string" || !HEX64.test(hex)) throw precondition(`${store.file}: run "${id}" has a malformed digest`);
        store.digests.set(id, hex);
      }
    }
    return store;
  }

  entries(): IterableIterator<[string, string]> {
    return this.digests.entries();
  }

  /** Record a run's token digest and make it durable before resolving. */
  set(runId: string, digestHex: string): Promise<void> {
    this.digests.set(runId, digestHex);
    const snapshot: StoreFile = { version: 1, runs: Object.fromEntries(this.digests) };
    // Writes are serialised so an older snapshot never lands after a newer one.
    const w = this.writing.then(() => writeAtomic(this.file, JSON.stringify(snapshot) + "\n"));
    this.writing = w.catch(() => undefined);
    return w;
  }
}

async function writeAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.tmp-${process.pid}`;
  const fh = await fs.promises.open(tmp, "w", 0o600);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fs.promises.rename(tmp, file);
  const d = await fs.promises.open(dir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}
