/**
 * CRC32C (Castagnoli, reflected polynomial 0x82F63B78), slicing-by-8.
 *
 * Why Castagnoli and not zlib's CRC32: it has better error-detection properties for the
 * record sizes we write and is the checksum used by most storage logs (ext4, iSCSI, LevelDB),
 * so external tools can verify our segments. Node 20 has no built-in CRC32C, hence this
 * table implementation. Slicing-by-8 processes 8 bytes per step with 8 lookup tables, which
 * is several times faster in V8 than the byte-at-a-time loop; recovery time is dominated by
 * checksumming, so it matters.
 *
 * Check value: crc32c("123456789") === 0xE3069283.
 */

const POLY = 0x82f63b78;

/** 8 tables of 256 entries, flattened: table k lives at [k*256, k*256+256). */
const T: Int32Array = (() => {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
})();

/**
 * Continue a CRC32C over `buf[start, end)`. `crc` is a previous *finalised* value (use 0 to
 * start), so `crc32cUpdate(crc32cUpdate(0, a), b) === crc32c(a ++ b)`.
 */
export function crc32cUpdate(crc: number, buf: Uint8Array, start = 0, end = buf.length): number {
  let c = ~crc | 0;
  let i = start;
  const t = T;
  // Align nothing: V8 reads bytes individually anyway; the win is fewer dependent table steps.
  const end8 = end - ((end - i) & 7);
  while (i < end8) {
    const lo = c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24));
    c =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + buf[i + 4]!]! ^
      t[512 + buf[i + 5]!]! ^
      t[256 + buf[i + 6]!]! ^
      t[buf[i + 7]!]!;
    i += 8;
  }
  while (i < end) {
    c = t[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
    i++;
  }
  return ~c >>> 0;
}

/** CRC32C of `buf[start, end)` as an unsigned 32-bit number. */
export function crc32c(buf: Uint8Array, start = 0, end = buf.length): number {
  return crc32cUpdate(0, buf, start, end);
}
