/**
 * Child process for crash.test.ts: recovers the journal in argv[2], checks what it finds,
 * then appends sequence-numbered records forever from 32 concurrent appenders, printing
 * `ack <seq>` for each append once its promise resolved, and taking a checkpoint every 250
 * sequence numbers. The parent SIGKILLs it at random moments.
 *
 * State model: a snapshot record (type 9) holds `base`, meaning every seq < base is
 * accounted for; after it come type-1 records with consecutive seqs base, base+1, ...
 */
import { Journal } from "../../src/journal/index.js";
import { crashPayload } from "./crash-payload.js";

const dir = process.argv[2]!;
const out = (line: string): void => void process.stdout.write(line + "\n");

const { journal, records, warnings } = await Journal.open({ dir, segmentBytes: 16 * 1024 });
for (const w of warnings) out(`warn ${w}`);
let next = 0;
for (const r of records) {
  if (r.type === 9) {
    if (!r.snapshot) fail(`snapshot record not flagged as snapshot at ${r.segment}@${r.offset}`);
    next = r.payload.readUInt32LE(0);
  } else if (r.type === 1) {
    if (!r.payload.equals(crashPayload(next))) fail(`record at ${r.segment}@${r.offset} is not seq ${next}`);
    next++;
  } else fail(`unexpected type ${r.type}`);
}
out(`start ${next}`);

function fail(msg: string): never {
  out(`BAD ${msg}`);
  process.exit(2);
}

let cpToggle = false;
async function worker(): Promise<void> {
  for (;;) {
    const seq = next++;
    const p = journal.append(1, crashPayload(seq));
    if (seq % 250 === 249) {
      const snap = Buffer.alloc(4);
      snap.writeUInt32LE(next, 0);
      cpToggle = !cpToggle;
      void journal.checkpoint([{ type: 9, payload: snap }], { dropOlder: cpToggle });
    }
    await p;
    out(`ack ${seq}`);
  }
}
await Promise.all([...Array(32).keys()].map(() => worker()));
