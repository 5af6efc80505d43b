import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";

const dirs: string[] = [];

/** A fresh temp directory, removed after the current test. */
export async function tempDir(prefix = "mixflow-journal-"): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), prefix));
  dirs.push(d);
  return d;
}

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** Deterministic pseudo-random payload for record `i` (content and length derive from i). */
export function payloadFor(i: number, maxLen = 300): Buffer {
  let x = (i * 2654435761 + 12345) >>> 0;
  const next = (): number => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  const len = i % 17 === 0 ? 0 : 4 + (next() % Math.max(1, maxLen - 4));
  const b = Buffer.alloc(len);
  if (len >= 4) b.writeUInt32LE(i, 0);
  for (let k = 4; k < len; k++) b[k] = next() & 0xff;
  return b;
}
