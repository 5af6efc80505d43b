/**
 * One writer per journal directory: a pid lock file against other processes, and a set of
 * directories open in this process (which the pid lock cannot tell apart). Two writers
 * would interleave frames and corrupt the journal.
 */
import { readFile, unlink, writeFile } from "node:fs/promises";
import { join, resolve as resolvePath } from "node:path";
import { JournalLockedError } from "./format.js";

const LOCK_FILE = "journal.lock";

/** Directories opened by a Journal in this process (the pid lock cannot see those). */
export const openDirs = new Set<string>();

/**
 * Advisory lock: `journal.lock` holds the owner's pid. A lock whose pid is no longer alive
 * (the owner crashed) is taken over. This guards against two servers writing one journal,
 * which would interleave frames and corrupt it.
 */
export async function acquireLock(dir: string): Promise<void> {
  const p = join(dir, LOCK_FILE);
  try {
    await writeFile(p, `${process.pid}\n`, { flag: "wx" });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
  }
  const pid = Number((await readFile(p, "utf8").catch(() => "")).trim());
  if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid)) {
    throw new JournalLockedError(`journal ${dir} is in use by process ${pid} (${p}); stop it first`);
  }
  await writeFile(p, `${process.pid}\n`);
}

export async function releaseLock(dir: string): Promise<void> {
  await unlink(join(dir, LOCK_FILE)).catch(() => undefined);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Is the directory locked by another live process? (For repair, which must not race a writer.) */
export async function lockedBy(dir: string): Promise<number | null> {
  if (openDirs.has(resolvePath(dir))) return process.pid;
  const pid = Number((await readFile(join(dir, LOCK_FILE), "utf8").catch(() => "")).trim());
  return Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && pidAlive(pid) ? pid : null;
}
