/**
 * Hand-written protobuf encoding of `mixflow.v1.Batch` — the hot path's serializer.
 *
 * proto-loader's generic serializer would copy a 1 MiB payload three times (into the
 * message object's writer, out of it, and into a Buffer). Here the message size is
 * computed first, one Buffer is allocated, the small fields are written, and the payload
 * fills its place directly from the sources (`LazyBytes`). grpc-js then frames it.
 * Field numbers and wire types follow proto/mixflow/v1/mixer.proto exactly; the round-trip
 * test decodes the output with protobufjs and compares.
 */
import type { LazyBytes, ServedBatch } from "../runs/index.js";
import { batchMsg, type BatchMsg, type EvalProbeMsg, type TextPayloadMsg, type TokenPayloadMsg } from "./batch-message.js";
import { internal } from "../errors.js";

type Bytes = Buffer | LazyBytes;

const VARINT = 0;
const LEN = 2;

function varintSize(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

class Writer {
  pos = 0;
  constructor(readonly buf: Buffer) {}

  varint(v: number): void {
    const b = this.buf;
    while (v >= 128) {
      b[this.pos++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    b[this.pos++] = v;
  }

  key(field: number, wire: number): void {
    this.varint(field * 8 + wire);
  }

  uint(field: number, v: number): void {
    if (v === 0) return;
    this.key(field, VARINT);
    this.varint(v);
  }

  bytes(field: number, v: Bytes): void {
    if (v.length === 0) return;
    this.key(field, LEN);
    this.varint(v.length);
    if (Buffer.isBuffer(v)) v.copy(this.buf, this.pos);
    else v.write(this.buf, this.pos);
    this.pos += v.length;
  }

  string(field: number, s: string): void {
    if (s.length === 0) return;
    const n = Buffer.byteLength(s);
    this.key(field, LEN);
    this.varint(n);
    this.pos += this.buf.write(s, this.pos);
  }

  header(field: number, len: number): void {
    this.key(field, LEN);
    this.varint(len);
  }
}

const uintSize = (field: number, v: number): number => (v === 0 ? 0 : varintSize(field * 8) + varintSize(v));
const lenSize = (field: number, len: number, emitEmpty = false): number =>
  len === 0 && !emitEmpty ? 0 : varintSize(field * 8 + 2) + varintSize(len) + len;

function textSize(t: TextPayloadMsg): number {
  return lenSize(1, t.data.length) + lenSize(2, t.offsets.length);
}

function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, d) => a + varintSize(d), 0);
}

function tokensSize(t: TokenPayloadMsg): number {
  const s = shapeSize(t.shape);
  return uintSize(1, t.dtype === "DTYPE_UINT32" ? 2 : 1) + lenSize(2, s) + lenSize(3, t.data.length) + lenSize(4, t.offsets.length);
}

function probeSize(p: EvalProbeMsg): number {
  return (
    uintSize(1, p.domain) +
    lenSize(2, p.sample_indices.length) +
    (p.text ? lenSize(3, textSize(p.text), true) : 0) +
    (p.tokens ? lenSize(4, tokensSize(p.tokens), true) : 0)
  );
}

function writeText(w: Writer, field: number, t: TextPayloadMsg): void {
  w.header(field, textSize(t));
  w.bytes(1, t.data);
  w.bytes(2, t.offsets);
}

function writeTokens(w: Writer, field: number, t: TokenPayloadMsg): void {
  w.header(field, tokensSize(t));
  w.uint(1, t.dtype === "DTYPE_UINT32" ? 2 : 1);
  const s = shapeSize(t.shape);
  if (s > 0) {
    w.header(2, s);
    for (const d of t.shape) w.varint(d);
  }
  w.bytes(3, t.data);
  w.bytes(4, t.offsets);
}

/** Encode a served batch into a new Buffer (the payload is written in place). */
export function encodeServed(b: ServedBatch): Buffer {
  return encodeBatch(batchMsg(b));
}

/** Encode a Batch message into a new Buffer (the payload is written in place). */
export function encodeBatch(m: BatchMsg): Buffer {
  return encodeInto(m, (size) => Buffer.allocUnsafe(size));
}

let scratch = Buffer.allocUnsafe(0);

/**
 * Encode a Batch into a process-wide scratch buffer and return a view of it. Only for
 * grpc-js's response serializer: grpc-js copies the serialized bytes into its framed
 * output synchronously, before anything else can run, so the scratch can be reused by the
 * next batch. This saves allocating (and collecting) one payload-sized buffer per batch.
 */
export function encodeBatchTransient(m: BatchMsg): Buffer {
  return encodeInto(m, (size) => {
    if (scratch.length < size) scratch = Buffer.allocUnsafe(Math.max(size, scratch.length * 2));
    return scratch.subarray(0, size);
  });
}

function encodeInto(m: BatchMsg, alloc: (size: number) => Buffer): Buffer {
  const probes = m.eval?.probes ?? [];
  const evalLen = probes.reduce((a, p) => a + lenSize(1, probeSize(p), true), 0);
  const size =
    lenSize(1, Buffer.byteLength(m.run_id)) +
    uintSize(2, m.step) +
    uintSize(3, m.rank) +
    uintSize(4, m.world_size) +
    uintSize(5, m.version) +
    uintSize(6, m.slot_offset) +
    uintSize(7, m.slots) +
    lenSize(8, m.slot_domains.length) +
    lenSize(9, m.slot_samples.length) +
    (m.text ? lenSize(10, textSize(m.text), true) : 0) +
    (m.tokens ? lenSize(11, tokensSize(m.tokens), true) : 0) +
    uintSize(12, m.eval_requested ? 1 : 0) +
    (m.eval ? lenSize(13, evalLen, true) : 0) +
    lenSize(14, Buffer.byteLength(m.digest));
  const w = new Writer(alloc(size));
  w.string(1, m.run_id);
  w.uint(2, m.step);
  w.uint(3, m.rank);
  w.uint(4, m.world_size);
  w.uint(5, m.version);
  w.uint(6, m.slot_offset);
  w.uint(7, m.slots);
  w.bytes(8, m.slot_domains);
  w.bytes(9, m.slot_samples);
  if (m.text) writeText(w, 10, m.text);
  if (m.tokens) writeTokens(w, 11, m.tokens);
  w.uint(12, m.eval_requested ? 1 : 0);
  if (m.eval) {
    w.header(13, evalLen);
    for (const p of probes) {
      w.header(1, probeSize(p));
      w.uint(1, p.domain);
      w.bytes(2, p.sample_indices);
      if (p.text) writeText(w, 3, p.text);
      if (p.tokens) writeTokens(w, 4, p.tokens);
    }
  }
  w.string(14, m.digest);
  if (w.pos !== size) throw internal(`batch encoder size mismatch: wrote ${w.pos}, computed ${size}`);
  return w.buf;
}
