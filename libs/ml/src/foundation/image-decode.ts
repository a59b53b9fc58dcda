/** PNG and JPEG decoding to RGB, with the pixel limit checked from the header before any pixel is allocated. No TF.js. */
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import type { ImageInputLimits } from './catalog.js';
import { InputError } from './errors.js';
import { imageHeader } from './image-header.js';

export { imageHeader };

export interface RgbImage {
  width: number;
  height: number;
  /** width × height × 3 bytes, row-major. */
  data: Uint8Array;
}

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
