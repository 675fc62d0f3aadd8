/** Modbus RTU CRC-16 (polynomial 0xA001 reflected, initial 0xFFFF); goes on the wire low byte first. */
export function crc16(bytes: Uint8Array): number {
  let crc = 0xffff;
  for (const b of bytes) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

export function withCrc(frame: Buffer): Buffer {
  const out = Buffer.alloc(frame.length + 2);
  frame.copy(out);
  out.writeUInt16LE(crc16(frame), frame.length);
  return out;
}

export function crcOk(frame: Buffer): boolean {
  if (frame.length < 4) return false;
  return crc16(frame.subarray(0, -2)) === frame.readUInt16LE(frame.length - 2);
}
