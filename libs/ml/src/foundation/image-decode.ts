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

export function checkImage(
  bytes: Uint8Array,
  index: number,
  limits: ImageInputLimits,
): { format: 'png' | 'jpeg'; width: number; height: number } {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new InputError(index, `input[${index}] is not an image (no bytes)`);
  if (bytes.length > limits.max_bytes)
    throw new InputError(index, `input[${index}] has ${bytes.length} bytes; the limit is ${limits.max_bytes}`);
  const header = imageHeader(bytes);
  if (!header) throw new InputError(index, `input[${index}] is not a PNG or JPEG image`);
  if (header.width === 0 || header.height === 0)
    throw new InputError(index, `input[${index}] has no pixels (${header.width}×${header.height})`);
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
    throw new InputError(
      index,
      `input[${index}] cannot be decoded as ${header.format.toUpperCase()}: ${err instanceof Error ? err.message : String(err)}`,
    );
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
  const orientation = header.format === 'jpeg' ? exifOrientation(bytes) : 1;
  return orientation > 1 && orientation <= 8 ? orient({ width, height, data }, orientation) : { width, height, data };
}

/** The EXIF orientation tag (1–8) of a JPEG's APP1 segment; 1 when there is none. */
export function exifOrientation(bytes: Uint8Array): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 2;
  while (at + 4 < bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    const length = view.getUint16(at + 2);
    if (marker === 0xda || marker === 0xd9) break;
    const exif = at + 4;
    if (marker === 0xe1 && exif + 14 < bytes.length && view.getUint32(exif) === 0x45786966) {
      const tiff = exif + 6;
      const little = view.getUint16(tiff) === 0x4949;
      const u16 = (o: number) => view.getUint16(o, little);
      const ifd = tiff + view.getUint32(tiff + 4, little);
      if (ifd + 2 > bytes.length) return 1;
      const entries = u16(ifd);
      for (let k = 0; k < entries; k++) {
        const entry = ifd + 2 + k * 12;
        if (entry + 12 > bytes.length) return 1;
        if (u16(entry) === 0x0112) return u16(entry + 8);
      }
      return 1;
    }
    at += 2 + length;
  }
  return 1;
}

/** The image as it should be seen: EXIF orientations 2–8 mirror and/or rotate the stored pixels. */
function orient(image: RgbImage, orientation: number): RgbImage {
  const { width: w, height: h, data } = image;
  const swap = orientation >= 5;
  const W = swap ? h : w;
  const H = swap ? w : h;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      // where the stored pixel (x, y) lands in the displayed image
      let X = x;
      let Y = y;
      if (orientation === 2) X = w - 1 - x;
      else if (orientation === 3) [X, Y] = [w - 1 - x, h - 1 - y];
      else if (orientation === 4) Y = h - 1 - y;
      else if (orientation === 5) [X, Y] = [y, x];
      else if (orientation === 6) [X, Y] = [h - 1 - y, x];
      else if (orientation === 7) [X, Y] = [h - 1 - y, w - 1 - x];
      else if (orientation === 8) [X, Y] = [y, w - 1 - x];
      const from = (y * w + x) * 3;
      const to = (Y * W + X) * 3;
      out[to] = data[from];
      out[to + 1] = data[from + 1];
      out[to + 2] = data[from + 2];
    }
  }
  return { width: W, height: H, data: out };
}
