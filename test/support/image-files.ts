import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** RGBA pixels of a simple drawing: a filled square (class 0) or a cross (class 1), shifted by `seed`. */
function drawing(width: number, height: number, shape: 'square' | 'cross', seed: number): Buffer {
  const data = Buffer.alloc(width * height * 4, 0);
  const dx = seed % 5;
  const dy = Math.floor(seed / 5) % 5;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = x - dx;
      const v = y - dy;
      const on =
        shape === 'square'
          ? u > width / 4 && u < (3 * width) / 4 && v > height / 4 && v < (3 * height) / 4
          : Math.abs(u - width / 2) < width / 10 || Math.abs(v - height / 2) < height / 10;
      const p = (y * width + x) * 4;
      data[p] = data[p + 1] = data[p + 2] = on ? 255 : (seed * 7) % 40;
      data[p + 3] = 255;
    }
  }
  return data;
}

export function pngImage(width: number, height: number, shape: 'square' | 'cross' = 'square', seed = 0): Buffer {
  const png = new pngjs.PNG({ width, height });
  drawing(width, height, shape, seed).copy(png.data);
  return pngjs.PNG.sync.write(png);
}

export function jpegImage(width: number, height: number, shape: 'square' | 'cross' = 'square', seed = 0): Buffer {
  return Buffer.from(jpeg.encode({ data: drawing(width, height, shape, seed), width, height }, 90).data);
}

/** A valid small PNG whose header then declares `width` × `height`: a decompression ("pixel") bomb. */
export function pixelBombPng(width: number, height: number): Buffer {
  const png = Buffer.from(pngImage(8, 8));
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  // The IHDR chunk's CRC covers its type and data (bytes 12..29).
  png.writeUInt32BE(crc32(png.subarray(12, 29)) >>> 0, 29);
  return png;
}

/** A PNG of random pixels: it does not compress, so its bytes are about width × height × 4. */
export function noisePng(width: number, height: number): Buffer {
  const png = new pngjs.PNG({ width, height });
  randomBytes(png.data.length).copy(png.data);
  return pngjs.PNG.sync.write(png);
}

// Drawings for training and prediction tests: shapes that move, on noise (seeded).

export type Paint = (x: number, y: number) => [number, number, number];

/** A seeded generator: the same images on every run (libs/ml's, which seeds training). */
export { seededRandom as random } from '../../libs/ml/src/random.js';

export function encodePng(width: number, height: number, paint: Paint): Buffer {
  const png = new pngjs.PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = paint(x, y);
      png.data.set([r, g, b, 255], (y * width + x) * 4);
    }
  }
  return pngjs.PNG.sync.write(png);
}

export function encodeJpeg(width: number, height: number, paint: Paint, quality = 90): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([...paint(x, y), 255], (y * width + x) * 4);
  }
  return Buffer.from(jpeg.encode({ data, width, height }, quality).data);
}

export const SHAPES = ['bar', 'column', 'ring'] as const;
export type Shape = (typeof SHAPES)[number];

/**
 * A 28×28 grey image of a shape at a random place and size on a noisy background: a horizontal bar, a vertical
 * column or a ring (an easy task for a small CNN, hard for pixels read one by one because the shapes move).
 */
export function shapeImage(shape: Shape, rand: () => number, format: 'png' | 'jpeg' = 'png', size = 28): Buffer {
  const cx = size * (0.3 + 0.4 * rand());
  const cy = size * (0.3 + 0.4 * rand());
  const half = size * (0.18 + 0.12 * rand());
  const thick = size * (0.06 + 0.04 * rand());
  const paint: Paint = (x, y) => {
    const dx = x - cx;
    const dy = y - cy;
    let on = false;
    if (shape === 'bar') on = Math.abs(dy) < thick && Math.abs(dx) < half;
    else if (shape === 'column') on = Math.abs(dx) < thick && Math.abs(dy) < half;
    else on = Math.abs(Math.hypot(dx, dy) - half * 0.8) < thick;
    const v = Math.max(0, Math.min(255, (on ? 220 : 20) + (rand() - 0.5) * 40));
    return [v, v, v];
  };
  return format === 'png' ? encodePng(size, size, paint) : encodeJpeg(size, size, paint);
}

/** A colour scene: warm (reds and oranges) or cool (blues and greens) blobs on a random background, 64×64. */
export function sceneImage(tone: 'warm' | 'cool', rand: () => number, format: 'png' | 'jpeg' = 'jpeg', size = 64): Buffer {
  const blobs = Array.from({ length: 3 }, () => ({ x: rand() * size, y: rand() * size, r: size * (0.15 + 0.2 * rand()), shade: rand() }));
  const bg = [60 + rand() * 80, 60 + rand() * 80, 60 + rand() * 80];
  const paint: Paint = (x, y) => {
    const hit = blobs.find((b) => Math.hypot(x - b.x, y - b.y) < b.r);
    if (!hit) return bg.map((c) => c + (rand() - 0.5) * 20) as [number, number, number];
    return tone === 'warm' ? [200 + 55 * hit.shade, 60 + 100 * hit.shade, 30] : [30, 90 + 100 * hit.shade, 200 + 55 * hit.shade];
  };
  return format === 'png' ? encodePng(size, size, paint) : encodeJpeg(size, size, paint);
}
