import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  Journal,
  JournalClosedError,
  JournalLockedError,
  MAX_RECORD_BYTES,
  type RecordRef,
  type StoredRecord,
} from "../../src/journal/index.js";
import { payloadFor, tempDir } from "./helpers.js";

async function reopen(dir: string): Promise<{ records: StoredRecord[]; warnings: string[] }> {
  const { journal, records, warnings } = await Journal.open({ dir });
  await journal.close();
  return { records, warnings };
}

describe("Journal round trip", () => {
  it("returns every record, including empty and large payloads, in order", async () => {
    const dir = await tempDir();
    const { journal, records: initial } = await Journal.open({ dir });
    expect(initial).toEqual([]);
    const big = Buffer.alloc(5 * 1024 * 1024 + 3); // straddles the 4 MiB read chunk
    for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
    const want: { type: number; payload: Buffer }[] = [];
    for (let i = 0; i < 3000; i++) want.push({ type: i % 256, payload: payloadFor(i, 3000) });
    want.splice(1500, 0, { type: 255, payload: big }, { type: 0, payload: Buffer.alloc(0) });
    for (const w of want.slice(0, 1000)) await journal.append(w.type, w.payload);
    await Promise.all(want.slice(1000, 2000).map((w) => journal.append(w.type, w.payload)));
    await journal.appendMany(want.slice(2000));
    await journal.close();

    const { records, warnings } = await reopen(dir);
    expect(warnings).toEqual([]);
    expect(records.length).toBe(want.length);
    for (let i = 0; i < want.length; i++) {
      expect(records[i]!.type).toBe(want[i]!.type);
      expect(records[i]!.payload.equals(want[i]!.payload)).toBe(true);
      expect(records[i]!.snapshot).toBe(false);
    }
  });

  it("reports each record's segment and offset, matching what open returns", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, segmentBytes: 4096 });
    const refs: RecordRef[] = [];
    for (let i = 0; i < 200; i++) refs.push(await journal.append(1, payloadFor(i)));
    refs.push(...(await journal.appendMany([0, 1, 2].map((i) => ({ type: 2, payload: payloadFor(i) })))));
    await journal.close();
    const { records } = await reopen(dir);
    expect(records.map((r) => ({ segment: r.segment, offset: r.offset }))).toEqual(refs);
  });

  it("copies the payload at call time, so the caller may reuse its buffer", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    const buf = Buffer.alloc(8);
    const ps: Promise<RecordRef>[] = [];
    for (let i = 0; i < 50; i++) {
      buf.writeUInt32LE(i, 0);
      ps.push(journal.append(3, buf));
    }
    await Promise.all(ps);
    await journal.close();
    const { records } = await reopen(dir);
    expect(records.map((r) => r.payload.readUInt32LE(0))).toEqual([...Array(50).keys()]);
  });

  it("rejects bad records without writing anything", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    await expect(journal.append(256, Buffer.alloc(1))).rejects.toThrow(RangeError);
    await expect(journal.append(-1, Buffer.alloc(1))).rejects.toThrow(/integer in \[0, 255\]/);
    await expect(journal.append(1.5, Buffer.alloc(1))).rejects.toThrow(RangeError);
    await expect(journal.append(1, "text" as unknown as Uint8Array)).rejects.toThrow(TypeError);
    await expect(journal.append(1, { length: MAX_RECORD_BYTES + 1 } as unknown as Uint8Array)).rejects.toThrow(TypeError);
    // A too-large record: use a typed array view over a shared buffer to avoid filling 64 MiB.
    const huge = new Uint8Array(new ArrayBuffer(MAX_RECORD_BYTES + 1));
    await expect(journal.append(1, huge)).rejects.toThrow(/larger than the/);
    await expect(journal.appendMany([{ type: 1, payload: Buffer.alloc(1) }, { type: 300, payload: Buffer.alloc(1) }])).rejects.toThrow(RangeError);
    expect(await journal.appendMany([])).toEqual([]);
    expect(journal.stats().appends).toBe(0);
    await journal.close();
    expect((await reopen(dir)).records).toEqual([]);
  });

  it("validates options", async () => {
    const dir = await tempDir();
    await expect(Journal.open({ dir, segmentBytes: 100 })).rejects.toThrow(/segmentBytes/);
    await expect(Journal.open({ dir, durability: "sometimes" as never })).rejects.toThrow(/durability/);
    await expect(Journal.open({ dir, groupCommitMaxDelayMs: -1 })).rejects.toThrow(/groupCommitMaxDelayMs/);
  });

  it("streams recovered records to onRecord instead of collecting them", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, segmentBytes: 4096 });
    await journal.appendMany([...Array(300).keys()].map((i) => ({ type: 1, payload: payloadFor(i) })));
    await journal.close();
    const seen: number[] = [];
    const res = await Journal.open({ dir, onRecord: (r) => seen.push(r.payload.length) });
    await res.journal.close();
    expect(res.records).toEqual([]);
    expect(seen).toEqual([...Array(300).keys()].map((i) => payloadFor(i).length));
  });
});

describe("group commit", () => {
  it("makes 1,000 parallel appends durable, in call order, with one or a few fsyncs", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    const before = journal.stats().fsyncs;
    const order: number[] = [];
    const ps = [...Array(1000).keys()].map((i) =>
      journal.append(7, payloadFor(i)).then((ref) => {
        order.push(i);
        return ref;
      }),
    );
    const refs = await Promise.all(ps);
    const st = journal.stats();
    expect(st.appends).toBe(1000);
    expect(st.fsyncs - before).toBeLessThan(1000 / 5);
    expect(order).toEqual([...Array(1000).keys()]);
    for (let i = 1; i < refs.length; i++) expect(refs[i]!.offset).toBeGreaterThan(refs[i - 1]!.offset);
    await journal.close();
    const { records } = await reopen(dir);
    expect(records.map((r) => r.payload)).toEqual([...Array(1000).keys()].map((i) => payloadFor(i)));
  });

  it("groups appends that arrive while an fsync is in flight (100 appenders x 20 sequential appends)", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    const before = journal.stats().fsyncs;
    const acked: number[][] = [];
    await Promise.all(
      [...Array(100).keys()].map(async (w) => {
        const mine: number[] = [];
        acked.push(mine);
        for (let k = 0; k < 20; k++) {
          const seq = w * 1000 + k;
          const p = Buffer.alloc(200);
          p.writeUInt32LE(seq, 0);
          await journal.append(1, p);
          mine.push(seq);
        }
      }),
    );
    const st = journal.stats();
    expect(st.appends).toBe(2000);
    expect(st.fsyncs - before).toBeLessThan(2000 / 5);
    await journal.close();
    const { records } = await reopen(dir);
    const seqs = records.map((r) => r.payload.readUInt32LE(0));
    expect(new Set(seqs).size).toBe(2000);
    // Each appender's records are in its own order.
    for (let w = 0; w < 100; w++) {
      const mine = seqs.filter((s) => Math.floor(s / 1000) === w);
      expect(mine).toEqual(acked[w]);
    }
  });

  it("waits up to groupCommitMaxDelayMs to gather a batch", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, groupCommitMaxDelayMs: 200 });
    const before = journal.stats().fsyncs;
    const ps: Promise<RecordRef>[] = [];
    for (let i = 0; i < 10; i++) {
      ps.push(journal.append(1, payloadFor(i)));
      // A macrotask turn between appends: without the delay the first would be written alone.
      await new Promise((r) => setImmediate(r));
    }
    await Promise.all(ps);
    expect(journal.stats().fsyncs - before).toBeLessThanOrEqual(2);
    await journal.close();
    expect((await reopen(dir)).records.length).toBe(10);
  });

  it("with durability none, never fsyncs and still round-trips", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, durability: "none", segmentBytes: 4096 });
    await Promise.all([...Array(500).keys()].map((i) => journal.append(1, payloadFor(i))));
    await journal.checkpoint([{ type: 2, payload: Buffer.from("s") }], { dropOlder: true });
    expect(journal.stats().fsyncs).toBe(0);
    await journal.close();
    expect((await reopen(dir)).records.map((r) => r.type)).toEqual([2]);
  });
});

describe("rotation", () => {
  it("rotates at segmentBytes, numbering segments consecutively, and reads across them", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, segmentBytes: 4096 });
    const big = Buffer.alloc(10_000, 9); // larger than a segment: gets a segment of its own
    const ps: Promise<RecordRef>[] = [];
    for (let i = 0; i < 1000; i++) {
      ps.push(journal.append(1, payloadFor(i, 120)));
      if (i === 500) ps.push(journal.append(2, big));
    }
    await Promise.all(ps);
    const st = journal.stats();
    await journal.close();
    const files = (await readdir(dir)).filter((f) => f.endsWith(".seg")).sort();
    expect(files.length).toBe(st.segments);
    expect(files.length).toBeGreaterThan(15);
    expect(files[0]).toBe("journal-000001.seg");
    expect(files[files.length - 1]).toBe(`journal-${String(files.length).padStart(6, "0")}.seg`);
    let total = 0;
    for (const f of files) {
      const size = (await stat(join(dir, f))).size;
      total += size;
      if (size > 4096) expect(size).toBe(24 + 9 + big.length); // only the oversized record's own segment
    }
    expect(total).toBe(st.bytes);
    const { records } = await reopen(dir);
    expect(records.length).toBe(1001);
    expect(records[501]!.payload.equals(big)).toBe(true);
  });
});

describe("checkpoint", () => {
  it("with dropOlder, deletes older segments and recovery starts at the snapshot", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, segmentBytes: 4096 });
    await Promise.all([...Array(200).keys()].map((i) => journal.append(1, payloadFor(i))));
    expect(journal.stats().segments).toBeGreaterThan(3);
    const snap = [
      { type: 100, payload: Buffer.from("run-a state") },
      { type: 100, payload: Buffer.from("run-b state") },
    ];
    await journal.checkpoint(snap, { dropOlder: true });
    expect(journal.stats().segments).toBe(1);
    expect((await readdir(dir)).filter((f) => f.endsWith(".seg")).length).toBe(1);
    await journal.append(1, Buffer.from("after"));
    await journal.close();
    const { records, journal: j2, checkpoint } = await Journal.open({ dir });
    await j2.close();
    expect(checkpoint).toEqual({ segment: records[0]!.segment, snapshotRecords: 2 });
    expect(records.map((r) => [r.type, r.payload.toString(), r.snapshot])).toEqual([
      [100, "run-a state", true],
      [100, "run-b state", true],
      [1, "after", false],
    ]);
  });

  it("without dropOlder, keeps history: open starts at the checkpoint, scan('all') reads everything", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, segmentBytes: 4096 });
    await Promise.all([...Array(100).keys()].map((i) => journal.append(1, payloadFor(i))));
    expect(journal.stats().segments).toBeGreaterThan(2);
    await journal.checkpoint([{ type: 100, payload: Buffer.from("snap1") }]);
    await journal.append(1, Buffer.from("x"));
    await journal.checkpoint([{ type: 100, payload: Buffer.from("snap2") }]);
    await journal.append(1, Buffer.from("y"));
    await journal.close();
    const { records } = await reopen(dir);
    expect(records.map((r) => r.payload.toString())).toEqual(["snap2", "y"]);
    const all: string[] = [];
    for await (const r of Journal.scan(dir, { from: "all" })) all.push(r.type === 100 ? r.payload.toString() : String(r.payload.length));
    expect(all.length).toBe(100 + 4);
    expect(all.slice(100)).toEqual(["snap1", "1", "snap2", "1"]);
    const fromCp: string[] = [];
    for await (const r of Journal.scan(dir)) fromCp.push(r.payload.toString());
    expect(fromCp).toEqual(["snap2", "y"]);
  });

  it("orders appends racing with a checkpoint: before-call appends precede the snapshot, later ones follow, none lost", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir, segmentBytes: 8192 });
    let called = 0;
    const all: Promise<unknown>[] = [];
    const cps: { at: number; p: Promise<void> }[] = [];
    // 50 appenders keep fsyncs in flight while checkpoints are taken in the middle.
    const workers = [...Array(50).keys()].map(async (w) => {
      for (let k = 0; k < 30; k++) {
        const seq = called++;
        const p = Buffer.alloc(100);
        p.writeUInt32LE(seq, 0);
        const ack = journal.append(1, p);
        all.push(ack);
        if (seq === 400 || seq === 1000) {
          const snap = Buffer.alloc(4);
          snap.writeUInt32LE(called, 0); // the snapshot summarises every append called so far
          cps.push({ at: called, p: journal.checkpoint([{ type: 9, payload: snap }], { dropOlder: seq === 1000 }) });
        }
        await ack;
        if (w % 7 === 0) await new Promise((r) => setImmediate(r));
      }
    });
    await Promise.all(workers);
    await Promise.all(all);
    await Promise.all(cps.map((c) => c.p));
    await journal.close();
    const { records } = await reopen(dir);
    expect(records[0]!.type).toBe(9);
    expect(records[0]!.snapshot).toBe(true);
    const upTo = records[0]!.payload.readUInt32LE(0);
    expect(upTo).toBe(cps[1]!.at);
    const seqs = records.slice(1).map((r) => r.payload.readUInt32LE(0));
    expect(seqs).toEqual([...Array(1500 - upTo).keys()].map((i) => i + upTo));
    expect(records.slice(1).every((r) => r.type === 1 && !r.snapshot)).toBe(true);
  });
});

describe("lifecycle", () => {
  it("close flushes, rejects later calls, and is idempotent; the directory can then be reopened", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    const p = journal.append(1, Buffer.from("last"));
    const c1 = journal.close();
    const c2 = journal.close();
    await expect(p).resolves.toBeDefined();
    await c1;
    await c2;
    await expect(journal.append(1, Buffer.from("x"))).rejects.toThrow(JournalClosedError);
    await expect(journal.checkpoint([])).rejects.toThrow(JournalClosedError);
    expect((await reopen(dir)).records.map((r) => r.payload.toString())).toEqual(["last"]);
  });

  it("refuses a second writer on the same directory", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    await expect(Journal.open({ dir })).rejects.toThrow(JournalLockedError);
    await journal.close();
    const again = await Journal.open({ dir });
    await again.journal.close();
  });

  it("after a write error, fails the pending appends and every later call (no retrying a failed fsync)", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    await journal.append(1, Buffer.from("ok"));
    // Simulate an I/O error: pull the file handle out from under the writer.
    await (journal as unknown as { fh: { close(): Promise<void> } }).fh.close();
    const a = journal.append(1, Buffer.from("lost-1"));
    const b = journal.append(1, Buffer.from("lost-2"));
    await expect(a).rejects.toThrow(JournalClosedError);
    await expect(b).rejects.toThrow(/failed earlier/);
    await expect(journal.append(1, Buffer.from("later"))).rejects.toThrow(JournalClosedError);
    await expect(journal.close()).rejects.toThrow(JournalClosedError);
    // The directory is released and what was acknowledged is intact.
    expect((await reopen(dir)).records.map((r) => r.payload.toString())).toEqual(["ok"]);
  });

  it("stats counts segments, bytes, appends and fsyncs", async () => {
    const dir = await tempDir();
    const { journal } = await Journal.open({ dir });
    const f0 = journal.stats().fsyncs;
    await journal.append(1, Buffer.alloc(10));
    await journal.append(1, Buffer.alloc(10));
    const st = journal.stats();
    expect(st).toEqual({ segments: 1, bytes: 24 + 2 * 19, appends: 2, fsyncs: f0 + 2 });
    await journal.close();
  });
});
