/** Generated images for the specs: shapes drawn into pixel arrays, encoded as PNG or JPEG (no files, no fixtures). */
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { seededRandom } from './random.js';
import type { Row } from './types.js';

export type Shape = 'square' | 'cross' | 'bar';
export const SHAPES: Shape[] = ['bar', 'cross', 'square'];

/** RGBA pixels of a white `shape` on black, its centre and size jittered by `random`. */
export function drawShape(shape: Shape, size: number, random: () => number): Uint8Array {
  const data = new Uint8Array(size * size * 4);
  for (let p = 0; p < size * size; p++) data[p * 4 + 3] = 255;
  const r = Math.round(size * (0.22 + 0.08 * random()));
  const cx = Math.round(size / 2 + (random() - 0.5) * size * 0.2);
  const cy = Math.round(size / 2 + (random() - 0.5) * size * 0.2);
  const t = Math.max(1, Math.round(size / 10));
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const dx = x - cx;
      const dy = y - cy;
      const inside =
        shape === 'square'
          ? Math.max(Math.abs(dx), Math.abs(dy)) <= r && Math.max(Math.abs(dx), Math.abs(dy)) > r - t
          : shape === 'cross'
            ? (Math.abs(dx) < t && Math.abs(dy) <= r) || (Math.abs(dy) < t && Math.abs(dx) <= r)
            : Math.abs(dy) < t && Math.abs(dx) <= r;
      if (inside) data.fill(255, (y * size + x) * 4, (y * size + x) * 4 + 3);
    }
  }
  return data;
}

export function encodePng(rgba: Uint8Array, width: number, height: number, grey = true): Buffer {
  const image = new pngjs.PNG({ width, height });
  image.data = Buffer.from(rgba);
  return pngjs.PNG.sync.write(image, { colorType: grey ? 0 : 2, inputColorType: 6, inputHasAlpha: true });
}

export function encodeJpeg(rgba: Uint8Array, width: number, height: number): Buffer {
  return Buffer.from(jpeg.encode({ data: Buffer.from(rgba), width, height }, 95).data);
}

/** `perClass` rows of each shape, as a stored image dataset has them ({image: base64 PNG, label}). */
export function shapeRows(perClass: number, size: number, seed: number): Row[] {
  const random = seededRandom(seed);
  const rows: Row[] = [];
  for (let k = 0; k < perClass; k++) {
    for (const shape of SHAPES)
      rows.push({ image: encodePng(drawShape(shape, size, random), size, size).toString('base64'), label: shape });
  }
  return rows;
}

/** Colour scenes: mostly red or mostly blue noise with a few blobs of the other colour, as PNG (RGB). */
export function colourRows(perClass: number, size: number, seed: number): Row[] {
  const random = seededRandom(seed);
  const rows: Row[] = [];
  for (let k = 0; k < perClass; k++) {
    for (const label of ['blue', 'red']) {
      const data = new Uint8Array(size * size * 4);
      for (let p = 0; p < size * size; p++) {
        const main = 150 + Math.floor(random() * 100);
        const other = Math.floor(random() * 80);
        const green = Math.floor(random() * 80);
        data.set(label === 'red' ? [main, green, other, 255] : [other, green, main, 255], p * 4);
      }
      rows.push({ image: encodePng(data, size, size, false).toString('base64'), label });
    }
  }
  return rows;
}

/** A PNG whose header declares `width` × `height` pixels and which carries no image data (a decompression bomb). */
export function bombPng(width: number, height: number): Buffer {
  const head = Buffer.from(encodePng(new Uint8Array(4).fill(255), 1, 1).subarray(0, 33));
  head.writeUInt32BE(width, 16);
  head.writeUInt32BE(height, 20);
  return Buffer.concat([head, Buffer.alloc(64)]);
}
