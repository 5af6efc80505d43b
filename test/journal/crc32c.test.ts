import { describe, expect, it } from "vitest";
import { crc32c } from "../../src/journal/index.js";
import { crc32cUpdate } from "../../src/journal/crc32c.js";

/** Bitwise reference implementation: slow, obviously correct. */
function crcRef(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const byte of b) {
    c ^= byte;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

describe("crc32c", () => {
  it("matches the standard check value", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
  });

  it("matches known vectors (RFC 3720 B.4)", () => {
    expect(crc32c(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(crc32c(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    const inc = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
    expect(crc32c(inc)).toBe(0x46dd794e);
    expect(crc32c(Buffer.alloc(0))).toBe(0);
  });

  it("agrees with the bitwise reference at every length and alignment, and composes", () => {
    const data = Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 131 + 7) & 0xff));
    for (let start = 0; start < 9; start++) {
      for (let end = start; end <= data.length; end += 7) {
        expect(crc32c(data, start, end)).toBe(crcRef(data.subarray(start, end)));
      }
    }
    for (const cut of [0, 1, 5, 8, 150, 300]) {
      expect(crc32cUpdate(crc32cUpdate(0, data, 0, cut), data, cut)).toBe(crc32c(data));
    }
  });

  it("does not checksum an all-zero frame header to zero (zero-filled tails must not parse as records)", () => {
    expect(crc32c(Buffer.alloc(5))).not.toBe(0);
  });
});
