import { mkdir, mkdtemp, readFile, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import {
  Journal,
  JournalCorruptError,
  JournalLockedError,
  checkJournal,
  repairJournal,
  type RecordRef,
  type StoredRecord,
} from "../../src/journal/index.js";
import { payloadFor, tempDir } from "./helpers.js";

/** A multi-segment journal, captured as file contents so each case can start from a copy. */
interface Fixture {
  files: Map<string, Buffer>;
  names: string[];
  refs: RecordRef[];
  payloads: Buffer[];
}

async function buildFixture(dir: string): Promise<Fixture> {
  const { journal } = await Journal.open({ dir, segmentBytes: 4096, durability: "none" });
  const refs: RecordRef[] = [];
  const payloads: Buffer[] = [];
  for (let i = 0; i < 150; i++) {
    const p = i === 149 ? Buffer.alloc(200, 0x5a) : payloadFor(i, 200);
    payloads.push(p);
    refs.push(await journal.append(i % 5, p));
  }
  await journal.close();
  const names = (await readdir(dir)).filter((f) => f.endsWith(".seg")).sort();
  const files = new Map<string, Buffer>();
  for (const n of names) files.set(n, await readFile(join(dir, n)));
  return { files, names, refs, payloads };
}

let caseNo = 0;
async function materialise(root: string, fx: Fixture, edit: (name: string, b: Buffer) => Buffer | null): Promise<string> {
  const dir = join(root, `case-${caseNo++}`);
  await mkdir(dir);
  for (const [n, b] of fx.files) {
    const out = edit(n, Buffer.from(b));
    if (out !== null) await writeFile(join(dir, n), out);
  }
  return dir;
}

async function tryOpen(dir: string): Promise<{ records: StoredRecord[]; warnings: string[] } | JournalCorruptError> {
  try {
    const { journal, records, warnings } = await Journal.open({ dir, durability: "none" });
    await journal.close();
    return { records, warnings };
  } catch (e) {
    if (e instanceof JournalCorruptError) return e;
    throw e;
  }
}

function expectPrefix(records: StoredRecord[], fx: Fixture, n: number): void {
  expect(records.length).toBe(n);
  for (let i = 0; i < n; i++) {
    expect(records[i]!.payload.equals(fx.payloads[i]!)).toBe(true);
    expect(records[i]!.type).toBe(i % 5);
  }
}

let root: string;
let fx: Fixture;
beforeAll(async () => {
  // Not tempDir(): that one is cleaned after each test, and the fixture is shared.
  root = await mkdtemp(join(tmpdir(), "mixflow-journal-corrupt-"));
  fx = await buildFixture(join(root, "fixture"));
  expect(fx.names.length).toBeGreaterThanOrEqual(3);
  return async () => {
    await rm(root, { recursive: true, force: true });
  };
});

describe("torn writes", () => {
  it("truncating the last segment at every byte inside the last record drops exactly that record, with a warning", async () => {
    const last = fx.names[fx.names.length - 1]!;
    const lastRef = fx.refs[fx.refs.length - 1]!;
    expect(lastRef.segment).toBe(last);
    const size = fx.files.get(last)!.length;
    expect(size).toBe(lastRef.offset + 9 + 200);
    for (let cut = lastRef.offset; cut < size; cut++) {
      const dir = await materialise(root, fx, (n, b) => (n === last ? b.subarray(0, cut) : b));
      const res = await tryOpen(dir);
      if (res instanceof Error) throw new Error(`cut at ${cut}: unexpected ${res.message}`);
      expectPrefix(res.records, fx, 149);
      if (cut === lastRef.offset) expect(res.warnings).toEqual([]);
      else {
        expect(res.warnings.length).toBe(1);
        expect(res.warnings[0]).toContain(`dropped torn tail of ${last}`);
        expect(res.warnings[0]).toContain(`offset ${lastRef.offset}`);
      }
      expect((await stat(join(dir, last))).size).toBe(lastRef.offset);
      await rm(dir, { recursive: true });
    }
  });

  it("after dropping a torn tail, appends continue cleanly and survive another reopen", async () => {
    const last = fx.names[fx.names.length - 1]!;
    const lastRef = fx.refs[fx.refs.length - 1]!;
    const dir = await materialise(root, fx, (n, b) => (n === last ? b.subarray(0, lastRef.offset + 50) : b));
    const a = await Journal.open({ dir });
    expect(a.warnings.length).toBe(1);
    await a.journal.append(42, Buffer.from("new"));
    await a.journal.close();
    const res = await tryOpen(dir);
    if (res instanceof Error) throw res;
    expect(res.warnings).toEqual([]);
    expectPrefix(res.records.slice(0, 149), fx, 149);
    expect(res.records[149]!.payload.toString()).toBe("new");
  });

  it("a zero-filled tail (file extended but data not written) is a torn tail too", async () => {
    const last = fx.names[fx.names.length - 1]!;
    const dir = await materialise(root, fx, (n, b) => (n === last ? Buffer.concat([b, Buffer.alloc(3000)]) : b));
    const res = await tryOpen(dir);
    if (res instanceof Error) throw res;
    expectPrefix(res.records, fx, 150);
    expect(res.warnings.length).toBe(1);
  });

  it("a short record in an older segment is corruption, not a torn tail", async () => {
    const first = fx.names[0]!;
    const size = fx.files.get(first)!.length;
    const dir = await materialise(root, fx, (n, b) => (n === first ? b.subarray(0, size - 3) : b));
    const res = await tryOpen(dir);
    expect(res).toBeInstanceOf(JournalCorruptError);
    expect((res as JournalCorruptError).segment).toBe(first);
    expect((res as JournalCorruptError).message).toMatch(/not the newest segment/);
  });
});

describe("bit flips", () => {
  it("every flipped bit is detected: torn-tail warning in the last record, else JournalCorruptError at the record's offset", async () => {
    // Positions: every header byte, every byte of the last two records, and 300 seeded random ones.
    const positions: { name: string; pos: number; bit: number }[] = [];
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    for (const name of fx.names) for (let p = 0; p < 24; p++) positions.push({ name, pos: p, bit: rnd(8) });
    const lastName = fx.names[fx.names.length - 1]!;
    const lastSize = fx.files.get(lastName)!.length;
    for (let p = fx.refs[fx.refs.length - 2]!.offset; p < lastSize; p++) positions.push({ name: lastName, pos: p, bit: rnd(8) });
    for (let k = 0; k < 200; k++) {
      const name = fx.names[rnd(fx.names.length)]!;
      positions.push({ name, pos: rnd(fx.files.get(name)!.length), bit: rnd(8) });
    }
    let torn = 0;
    let corrupt = 0;
    for (const { name, pos, bit } of positions) {
      const dir = await materialise(root, fx, (n, b) => {
        if (n === name) b[pos]! ^= 1 << bit;
        return b;
      });
      const res = await tryOpen(dir);
      const inFile = fx.refs.map((r, i) => ({ ...r, i })).filter((r) => r.segment === name);
      const frame = pos < 24 ? null : [...inFile].reverse().find((r) => r.offset <= pos)!;
      const isLastRecord = frame !== null && frame.i === fx.refs.length - 1;
      const where = `${name}@${pos} bit ${bit}`;
      if (isLastRecord) {
        if (res instanceof Error) throw new Error(`${where}: expected torn tail, got ${res.message}`);
        expect(res.warnings.length, where).toBe(1);
        expectPrefix(res.records, fx, 149);
        torn++;
      } else {
        if (!(res instanceof JournalCorruptError)) throw new Error(`${where}: flip not detected (${res.records.length} records read)`);
        const offset = frame === null ? 0 : frame.offset;
        expect(res.segment, where).toBe(name);
        expect(res.offset, where).toBe(offset);
        expect(res.message).toContain(name);
        expect(res.message).toContain(`offset ${offset}`);
        corrupt++;
      }
      await rm(dir, { recursive: true });
    }
    expect(torn).toBeGreaterThanOrEqual(209);
    expect(corrupt).toBeGreaterThan(250);
  });

  it("damage inside a checkpoint snapshot is corruption even in the newest segment", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    await journal.append(1, Buffer.from("before"));
    await journal.checkpoint([
      { type: 9, payload: Buffer.from("snapshot one") },
      { type: 9, payload: Buffer.from("snapshot two") },
    ], { dropOlder: true });
    await journal.close();
    const seg = (await readdir(dir)).find((f) => f.endsWith(".seg"))!;
    const b = await readFile(join(dir, seg));
    b[b.length - 2]! ^= 0x10; // inside the last snapshot record, which is also the last frame
    await writeFile(join(dir, seg), b);
    const res = await tryOpen(dir);
    expect(res).toBeInstanceOf(JournalCorruptError);
    expect((res as JournalCorruptError).message).toMatch(/checkpoint snapshot/);
  });
});

describe("structural damage", () => {
  it("a missing middle segment, or a missing first segment, is corruption", async () => {
    const gap = await materialise(root, fx, (n, b) => (n === fx.names[1] ? null : b));
    const e1 = await tryOpen(gap);
    expect(e1).toBeInstanceOf(JournalCorruptError);
    expect((e1 as Error).message).toMatch(/missing between journal-000001.seg and journal-000003.seg/);
    const start = await materialise(root, fx, (n, b) => (n === fx.names[0] ? null : b));
    const e2 = await tryOpen(start);
    expect(e2).toBeInstanceOf(JournalCorruptError);
    expect((e2 as Error).message).toMatch(/earlier segments are missing/);
    await expect(repairJournal(start)).rejects.toThrow(/discard the whole journal/);
  });

  it("a leftover .tmp segment from a crash during rotation is removed with a warning", async () => {
    const dir = await materialise(root, fx, (_n, b) => b);
    const tmpName = `journal-${String(fx.names.length + 1).padStart(6, "0")}.seg.tmp`;
    await writeFile(join(dir, tmpName), Buffer.alloc(10));
    expect((await checkJournal(dir)).tmpFiles).toEqual([tmpName]);
    const res = await tryOpen(dir);
    if (res instanceof Error) throw res;
    expect(res.warnings.join("\n")).toContain(tmpName);
    expectPrefix(res.records, fx, 150);
    expect((await readdir(dir)).includes(tmpName)).toBe(false);
  });
});

describe("check and repair", () => {
  it("check reports segments, record counts by type, and ok for a clean journal; repair changes nothing", async () => {
    const dir = await materialise(root, fx, (_n, b) => b);
    const rep = await checkJournal(dir);
    expect(rep.status).toBe("ok");
    expect(rep.problem).toBeNull();
    expect(rep.records).toBe(150);
    expect(rep.recordsByType).toEqual({ 0: 30, 1: 30, 2: 30, 3: 30, 4: 30 });
    expect(rep.segments.map((s) => s.segment)).toEqual(fx.names);
    expect(rep.segments.reduce((a, s) => a + s.records, 0)).toBe(150);
    expect(rep.segments.every((s) => s.live && s.bytes === s.validBytes)).toBe(true);
    const r = await repairJournal(dir);
    expect(r.changed).toBe(false);
    expect(r.backups).toEqual([]);
  });

  it("check reports a torn tail; repair truncates it and keeps a backup", async () => {
    const last = fx.names[fx.names.length - 1]!;
    const lastRef = fx.refs[fx.refs.length - 1]!;
    const dir = await materialise(root, fx, (n, b) => (n === last ? b.subarray(0, b.length - 5) : b));
    const rep = await checkJournal(dir);
    expect(rep.status).toBe("torn-tail");
    expect(rep.problem).toMatchObject({ kind: "torn-tail", segment: last, offset: lastRef.offset });
    const r = await repairJournal(dir);
    expect(r.truncated).toEqual([{ segment: last, offset: lastRef.offset, bytesRemoved: 9 + 200 - 5 }]);
    expect(r.after.status).toBe("ok");
    expect(r.backups.length).toBe(1);
    expect((await readFile(r.backups[0]!)).length).toBe(fx.files.get(last)!.length - 5);
  });

  it("mid-journal corruption: check names segment and offset; repair drops just that record, keeps every other one and a backup", async () => {
    const victim = fx.refs.findIndex((r) => r.segment === fx.names[1]) + 3;
    const vref = fx.refs[victim]!;
    const dir = await materialise(root, fx, (n, b) => {
      if (n === vref.segment) b[vref.offset + 12]! ^= 0x01;
      return b;
    });
    const corruptCopy = await readFile(join(dir, vref.segment));
    const rep = await checkJournal(dir);
    expect(rep.status).toBe("corrupt");
    expect(rep.problem).toMatchObject({ kind: "corrupt", segment: vref.segment, offset: vref.offset, resumeAt: fx.refs[victim + 1]!.offset });
    expect(rep.problem!.reason).toMatch(/checksum mismatch/);
    await expect(tryOpen(dir)).resolves.toBeInstanceOf(JournalCorruptError);

    const r = await repairJournal(dir);
    expect(r.changed).toBe(true);
    expect(r.truncated).toEqual([]);
    expect(r.removedSegments).toEqual([]);
    expect(r.dropped).toEqual([{ segment: vref.segment, offset: vref.offset, bytes: 9 + fx.payloads[victim]!.length, records: 1, reason: expect.stringMatching(/checksum mismatch/) }]);
    expect(r.actions.some((x) => x.startsWith(`dropped 1 record at ${vref.segment} offset ${vref.offset}`))).toBe(true);
    const bak = r.backups.find((p) => p.includes(`${vref.segment}.bak-`))!;
    expect((await readFile(bak)).equals(corruptCopy)).toBe(true);
    expect(r.after.status).toBe("ok");
    const res = await tryOpen(dir);
    if (res instanceof Error) throw res;
    expect(res.warnings).toEqual([]);
    // Every record but the corrupt one, in order.
    const want = fx.payloads.map((p, i) => ({ p, i })).filter((x) => x.i !== victim);
    expect(res.records.length).toBe(want.length);
    res.records.forEach((rec, k) => {
      expect(rec.payload.equals(want[k]!.p)).toBe(true);
      expect(rec.type).toBe(want[k]!.i % 5);
    });
  });

  it("corruption in history before a checkpoint: open is unaffected, check flags it, repair moves old history aside", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, segmentBytes: 4096 });
    await Promise.all([...Array(200).keys()].map((i) => journal.append(1, payloadFor(i))));
    await journal.checkpoint([{ type: 9, payload: Buffer.from("snap") }]);
    await journal.append(1, Buffer.from("after"));
    await journal.close();
    const first = "journal-000001.seg";
    const b = await readFile(join(dir, first));
    b[100]! ^= 0x40;
    await writeFile(join(dir, first), b);

    const res = await tryOpen(dir);
    if (res instanceof Error) throw res;
    expect(res.records.map((r) => r.payload.toString())).toEqual(["snap", "after"]);
    const rep = await checkJournal(dir);
    expect(rep.status).toBe("corrupt");
    expect(rep.problem).toMatchObject({ segment: first });
    expect(rep.segments[0]!.live).toBe(false);
    expect(rep.segments[rep.segments.length - 1]!.live).toBe(true);
    await expect(Journal.scan(dir, { from: "all" })[Symbol.asyncIterator]().next()).resolves.toBeDefined();

    const r = await repairJournal(dir);
    expect(r.removedSegments).toEqual([first]);
    expect(r.after.status).toBe("ok");
    const again = await tryOpen(dir);
    if (again instanceof Error) throw again;
    expect(again.records.map((x) => x.payload.toString())).toEqual(["snap", "after"]);
  });

  it("repair refuses while the journal is open", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    await expect(repairJournal(dir)).rejects.toThrow(JournalLockedError);
    await journal.close();
    await expect(repairJournal(dir)).resolves.toMatchObject({ changed: false });
  });

  it("scan throws JournalCorruptError on mid-journal damage and reports a torn tail through onWarning", async () => {
    const vref = fx.refs[10]!;
    const bad = await materialise(root, fx, (n, b) => {
      if (n === vref.segment) b[vref.offset + 9]! ^= 0x80;
      return b;
    });
    const read = async (d: string, w?: (s: string) => void): Promise<number> => {
      let n = 0;
      for await (const _r of Journal.scan(d, w ? { onWarning: w } : {})) n++;
      return n;
    };
    await expect(read(bad)).rejects.toThrow(JournalCorruptError);
    const last = fx.names[fx.names.length - 1]!;
    const torn = await materialise(root, fx, (n, b) => (n === last ? b.subarray(0, b.length - 1) : b));
    const warnings: string[] = [];
    expect(await read(torn, (w) => warnings.push(w))).toBe(149);
    expect(warnings.length).toBe(1);
    // scan is read-only: the torn bytes are still there.
    expect((await stat(join(torn, last))).size).toBe(fx.files.get(last)!.length - 1);
    await unlink(join(torn, last));
  });
});
