/**
 * `mixflow journal check|repair --journal DIR`: what an operator runs when a server
 * refuses to start because its journal is corrupt. `check` reads every segment and
 * reports the first problem (segment and offset); `repair` truncates at the last good
 * record, keeping backups of everything it changes.
 */
import { parseArgs } from "node:util";
import { checkJournal, repairJournal } from "../journal/index.js";
import { resolveJournalDir } from "../history/index.js";

export const JOURNAL_HELP = `mixflow journal <check|repair> --journal DIR

  --journal DIR   the server's data dir (or its journal/ folder)
  check           verify every record's checksum; report the first problem; exit 1 if any
  repair          drop a bad record in the middle (records after it kept), cut a torn end; backups kept as *.bak-<time>; stop the server first
`;

export async function journalCommand(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({ args: rest, options: { journal: { type: "string" }, help: { type: "boolean", short: "h" } }, strict: true });
  if (!sub || values.help || sub === "--help") {
    process.stdout.write(JOURNAL_HELP);
    return;
  }
  if (!values.journal) throw new Error(`missing --journal\n\n${JOURNAL_HELP}`);
  const dir = resolveJournalDir(values.journal);
  if (sub === "check") {
    const r = await checkJournal(dir);
    process.stdout.write(JSON.stringify(r, null, 2) + "\n");
    if (r.status !== "ok") process.exitCode = 1;
    return;
  }
  if (sub === "repair") {
    const r = await repairJournal(dir);
    process.stdout.write(JSON.stringify(r, null, 2) + "\n");
    return;
  }
  throw new Error(`unknown journal command "${sub}"\n\n${JOURNAL_HELP}`);
}
