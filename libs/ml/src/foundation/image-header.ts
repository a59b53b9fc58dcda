/** What an encoded PNG or JPEG declares about itself, read from its header alone (no decoder: the API uses it). */
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format and dimensions an encoded image declares, from its header only; null when it is neither PNG nor JPEG. */
export function imageHeader(bytes: Uint8Array): { format: 'png' | 'jpeg'; width: number; height: number } | null {
  if (bytes.length >= 24 && PNG_SIGNATURE.every((b, i) => bytes[i] === b)) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (String.fromCharCode(...bytes.subarray(12, 16)) !== 'IHDR') return null;
    return { format: 'png', width: view.getUint32(16), height: view.getUint32(20) };
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    let at = 2;
    while (at + 9 < bytes.length) {
      if (bytes[at] !== 0xff) return null;
      const marker = bytes[at + 1];
      if (marker === 0xff) {
        at++;
        continue;
      }
      const length = (bytes[at + 2] << 8) | bytes[at + 3];
      // SOF0..SOF15 but DHT (C4), JPG (C8) and DAC (CC) carry the frame's dimensions
      if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
        return { format: 'jpeg', height: (bytes[at + 5] << 8) | bytes[at + 6], width: (bytes[at + 7] << 8) | bytes[at + 8] };
      }
      if (marker === 0xd9 || marker === 0xda) return null;
      at += 2 + length;
    }
  }
  return null;
}

/** Refuses input `index` from its size and header alone: not PNG/JPEG, too many bytes, too many pixels. */
