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
