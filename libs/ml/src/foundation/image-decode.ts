/** PNG and JPEG decoding to RGB, with the pixel limit checked from the header before any pixel is allocated. No TF.js. */
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import type { ImageInputLimits } from './catalog.js';
import { InputError } from './errors.js';

export interface RgbImage {
  width: number;
  height: number;
  /** width × height × 3 bytes, row-major. */
  data: Uint8Array;
}

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
export function checkImage(bytes: Uint8Array, index: number, limits: ImageInputLimits): { format: 'png' | 'jpeg'; width: number; height: number } {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new InputError(index, `input[${index}] is not an image (no bytes)`);
  if (bytes.length > limits.max_bytes) throw new InputError(index, `input[${index}] has ${bytes.length} bytes; the limit is ${limits.max_bytes}`);
  const header = imageHeader(bytes);
  if (!header) throw new InputError(index, `input[${index}] is not a PNG or JPEG image`);
  if (header.width === 0 || header.height === 0) throw new InputError(index, `input[${index}] has no pixels (${header.width}×${header.height})`);
  if (header.width * header.height > limits.max_pixels) {
    throw new InputError(index, `input[${index}] is ${header.width}×${header.height} pixels; the limit is ${limits.max_pixels} pixels`);
  }
  return header;
}

/** Decodes input `index` to 8-bit RGB (grey, palette and 16-bit PNGs converted, alpha dropped), after `checkImage`. */
export function decodeImage(bytes: Uint8Array, index: number, limits: ImageInputLimits): RgbImage {
  const header = checkImage(bytes, index, limits);
  let rgba: Uint8Array;
  let width: number;
  let height: number;
  try {
    if (header.format === 'png') {
      const png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      ({ width, height } = png);
      rgba = png.data;
    } else {
      const maxResolutionInMP = limits.max_pixels / 1e6;
      const decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxResolutionInMP, maxMemoryUsageInMB: 1024 });
      ({ width, height } = decoded);
      rgba = decoded.data;
    }
  } catch (err) {
    throw new InputError(index, `input[${index}] cannot be decoded as ${header.format.toUpperCase()}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (width !== header.width || height !== header.height || rgba.length < width * height * 4) {
    throw new InputError(index, `input[${index}] decodes to other dimensions than its header declares`);
  }
  const data = new Uint8Array(width * height * 3);
  for (let p = 0, q = 0; p < width * height; p++, q += 4) {
    data[p * 3] = rgba[q];
    data[p * 3 + 1] = rgba[q + 1];
    data[p * 3 + 2] = rgba[q + 2];
  }
  return { width, height, data };
}
