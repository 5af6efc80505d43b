/** Payload of seq `s` in the crash test: seq, then bytes derived from it; length varies 4..403. */
export function crashPayload(s: number): Buffer {
  const b = Buffer.alloc(4 + ((s * 37) % 400));
  b.writeUInt32LE(s, 0);
  for (let i = 4; i < b.length; i++) b[i] = (s * 31 + i * 7) & 0xff;
  return b;
}
