/**
 * A strict check of a request's protobuf framing, run before decoding. protobufjs reads a
 * string whose declared length runs past the end of the buffer as the bytes that are there
 * (`0a 05 61 62` decodes as run_id "ab"), so a truncated request could act on a prefix of
 * what the client sent. This walk checks every field's extent against its enclosing
 * message, recursing into the message-typed (and map) fields the schema declares, and
 * names the first field that does not fit. Cost: one pass over the tags; byte payloads
 * (per-sample losses) are skipped, not read.
 *
 * The same walk refuses integers that the decoder would silently change: a 64-bit field
 * above 2^53 - 1 (decoded as a rounded JS number: step 2^53 + 1 would become 2^53) and a
 * 32-bit field above 2^32 - 1 (truncated to its low 32 bits: rank 2^32 would become 0).
 * The message names the field and the value as sent, exactly.
 */
import protobuf from "protobufjs";

/** Where a field stops fitting, or null when the framing is sound. */
export function framingProblem(buf: Uint8Array, type: protobuf.Type | null): string | null {
  return walk(buf, 0, buf.length, type, "");
}

function walk(buf: Uint8Array, start: number, end: number, type: protobuf.Type | null, where: string): string | null {
  let pos = start;
  while (pos < end) {
    const tag = varint(buf, pos, end);
    if (tag === null) return `${where}truncated field tag at byte ${pos}`;
    pos = tag.next;
    const field = Math.floor(tag.value / 8);
    const wire = tag.value % 8;
    const name = where + (type?.fieldsById[field]?.name ?? `field ${field}`);
    switch (wire) {
      case 0: {
        const v = varint(buf, pos, end);
        if (v === null) return `${name}: truncated varint at byte ${pos}`;
        const range = rangeProblem(type?.fieldsById[field]?.type, v.value, buf, pos, v.next);
        if (range !== null) return `${name}: ${range}`;
        pos = v.next;
        break;
      }
      case 1:
      case 5: {
        const n = wire === 1 ? 8 : 4;
        if (pos + n > end) return `${name}: needs ${n} bytes at byte ${pos}, ${end - pos} left`;
        pos += n;
        break;
      }
      case 2: {
        const len = varint(buf, pos, end);
        if (len === null) return `${name}: truncated length at byte ${pos}`;
        pos = len.next;
        if (pos + len.value > end) return `${name}: declares ${len.value} bytes at byte ${pos}, only ${end - pos} left (truncated message)`;
        const inner = nestedType(type, field);
        if (inner !== undefined) {
          const p = walk(buf, pos, pos + len.value, inner, `${name}.`);
          if (p !== null) return p;
        }
        pos += len.value;
        break;
      }
      default:
        return `${name}: unsupported wire type ${wire} at byte ${pos}`;
    }
  }
  return null;
}

/** The type to check a length-delimited field's content against; undefined: opaque bytes. */
function nestedType(type: protobuf.Type | null, id: number): protobuf.Type | null | undefined {
  const f = type?.fieldsById[id];
  if (!f) return undefined;
  // A map entry is a message of key (1) and value (2); its fields are checked for framing.
  if (f instanceof protobuf.MapField) return null;
  f.resolve();
  return f.resolvedType instanceof protobuf.Type ? f.resolvedType : undefined;
}

/**
 * Why a varint of a field of scalar type `t` would not decode as sent, or null. The types
 * the contract uses: uint64 and int64 (steps, counts) and uint32 (ranks, sizes, versions);
 * int32 and enums sign-extend negatives to 10 bytes, which their decoder reads correctly.
 */
function rangeProblem(t: string | undefined, value: number, buf: Uint8Array, start: number, next: number): string | null {
  if (value <= Number.MAX_SAFE_INTEGER && (value <= 0xffffffff || t !== "uint32")) return null;
  if (t !== "uint32" && t !== "uint64" && t !== "int64") return null;
  let exact = 0n;
  for (let i = start; i < next; i++) exact |= BigInt(buf[i]! & 0x7f) << BigInt(7 * (i - start));
  if (t === "uint32") return `${exact} does not fit in uint32 (at most 4294967295)`;
  const v = t === "int64" && exact >= 1n << 63n ? exact - (1n << 64n) : exact;
  if (v >= -BigInt(Number.MAX_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return null;
  return `${v} is outside ±(2^53 - 1) = ±9007199254740991, the integers mixflow accepts exactly`;
}

function varint(buf: Uint8Array, pos: number, end: number): { value: number; next: number } | null {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) return null;
    const b = buf[pos + i]!;
    value += (b & 0x7f) * mul;
    mul *= 128;
    if (b < 0x80) return { value, next: pos + i + 1 };
  }
  return null;
}
