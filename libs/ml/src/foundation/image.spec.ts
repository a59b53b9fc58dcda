import { beforeAll, describe, expect, it } from '@jest/globals';
import jpeg from 'jpeg-js';
import pngjs from 'pngjs';
import { initBackend } from '../backend.js';
import { foundationModel, type ImageInputLimits } from './catalog.js';
import { InputError } from './errors.js';
import { checkImage, decodeImage, imageHeader } from './image-decode.js';
import { loadFoundation, type FoundationHandle } from './runtime.js';

const limits = foundationModel('mobilenet-v2')!.input as ImageInputLimits;

function png(width: number, height: number, options: { colorType?: 0 | 2 | 4 | 6; bitDepth?: 8 | 16 } = {}): Buffer {
  const image = new pngjs.PNG({ width, height });
  for (let p = 0; p < width * height; p++) {
    image.data[p * 4] = (p * 13) % 256;
    image.data[p * 4 + 1] = (p * 7) % 256;
    image.data[p * 4 + 2] = (p * 3) % 256;
    image.data[p * 4 + 3] = 255;
  }
  return pngjs.PNG.sync.write(image, {
    colorType: options.colorType ?? 6,
    bitDepth: options.bitDepth ?? 8,
    inputColorType: 6,
    inputHasAlpha: true,
  });
}

function jpg(width: number, height: number): Buffer {
  const data = Buffer.alloc(width * height * 4);
  for (let p = 0; p < width * height; p++) data.set([(p * 5) % 256, 128, (p * 11) % 256, 255], p * 4);
  return jpeg.encode({ data, width, height }, 90).data;
}

/** A PNG that declares `width` × `height` pixels in its header and carries no real image data after it. */
function bombHeader(width: number, height: number): Buffer {
  const head = Buffer.from(png(1, 1).subarray(0, 33));
  head.writeUInt32BE(width, 16);
  head.writeUInt32BE(height, 20);
  return Buffer.concat([head, Buffer.alloc(64)]);
}

function inputError(fn: () => unknown): InputError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return err as InputError;
  }
  throw new Error('expected an InputError');
}

describe('image decoding', () => {
  it('reads the dimensions of PNG and JPEG from their headers', () => {
    expect(imageHeader(png(30, 20))).toEqual({ format: 'png', width: 30, height: 20 });
    expect(imageHeader(jpg(17, 9))).toEqual({ format: 'jpeg', width: 17, height: 9 });
    expect(imageHeader(Buffer.from('GIF89a...............................'))).toBeNull();
  });

  it('decodes RGB, RGBA, grey, grey+alpha and 16-bit PNGs and JPEGs to 8-bit RGB', () => {
    for (const options of [
      { colorType: 2 as const },
      { colorType: 6 as const },
      { colorType: 0 as const },
      { colorType: 4 as const },
      { colorType: 2 as const, bitDepth: 16 as const },
    ]) {
      const rgb = decodeImage(png(5, 4, options), 0, limits);
      expect([rgb.width, rgb.height, rgb.data.length]).toEqual([5, 4, 60]);
    }
    const rgb = decodeImage(png(5, 4, { colorType: 2 }), 0, limits);
    expect(Array.from(rgb.data.subarray(3, 6))).toEqual([13, 7, 3]);
    expect(decodeImage(jpg(16, 8), 0, limits).data.length).toBe(16 * 8 * 3);
  });

  it('applies the EXIF orientation of a JPEG (6: rotate 90° clockwise)', () => {
    const width = 16;
    const height = 8;
    const data = Buffer.alloc(width * height * 4);
    for (let p = 0; p < width * height; p++) data.set(p % width < 8 ? [250, 0, 0, 255] : [0, 0, 250, 255], p * 4);
    const plain = jpeg.encode({ data, width, height }, 95).data;
    // APP1: "Exif\0\0", a big-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1, value 6
    const tiff = Buffer.from([0x4d, 0x4d, 0, 0x2a, 0, 0, 0, 8, 0, 1, 0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, 0, 0, 0, 0]);
    const app1 = Buffer.concat([Buffer.from([0xff, 0xe1, 0, 2 + 6 + tiff.length]), Buffer.from('Exif\0\0', 'latin1'), tiff]);
    const rotated = Buffer.concat([plain.subarray(0, 2), app1, plain.subarray(2)]);
    expect(decodeImage(plain, 0, limits)).toMatchObject({ width: 16, height: 8 });
    const rgb = decodeImage(rotated, 0, limits);
    expect([rgb.width, rgb.height]).toEqual([8, 16]);
    const at = (x: number, y: number) => Array.from(rgb.data.subarray((y * 8 + x) * 3, (y * 8 + x) * 3 + 3));
    expect(at(4, 2)[0]).toBeGreaterThan(200); // the left (red) half is now on top
    expect(at(4, 13)[2]).toBeGreaterThan(200);
  });

  it('refuses a decompression bomb from its header, before any pixel is allocated', () => {
    const bomb = bombHeader(100_000, 100_000);
    expect(bomb.length).toBeLessThan(200);
    const err = inputError(() => checkImage(bomb, 3, limits));
    expect(err.index).toBe(3);
    expect(err.message).toBe(`input[3] is 100000×100000 pixels; the limit is ${limits.max_pixels} pixels`);
    expect(inputError(() => decodeImage(bomb, 3, limits)).message).toMatch(/pixels; the limit is/);
  });

  it('refuses undecodable bytes, naming the input', () => {
    expect(inputError(() => decodeImage(Buffer.from('not an image at all, just text'), 2, limits)).message).toBe(
      'input[2] is not a PNG or JPEG image',
    );
    const truncated = png(40, 40).subarray(0, 60);
    expect(inputError(() => decodeImage(truncated, 0, limits)).message).toMatch(/^input\[0\] cannot be decoded as PNG/);
    expect(inputError(() => decodeImage(new Uint8Array(limits.max_bytes + 1), 1, limits)).message).toMatch(/bytes; the limit is/);
  });
});

describe('the image foundation models (MobileNetV2 of nsfwjs, on wasm)', () => {
  let mobilenet: FoundationHandle;
  let nsfw: FoundationHandle;
  beforeAll(async () => {
    await initBackend('wasm');
    mobilenet = await loadFoundation('mobilenet-v2');
    nsfw = await loadFoundation('nsfw-mobilenet-v2');
  });

  it('embeds PNG and JPEG images as 1280-d vectors, one per image, in order', async () => {
    const images = [png(64, 48), jpg(300, 200), png(224, 224, { colorType: 0 })];
    const out = await mobilenet.embed(images);
    expect(out.vectors.map((v) => v.length)).toEqual([1280, 1280, 1280]);
    const second = (await mobilenet.embed([images[1]])).vectors[0];
    expect(Array.from(second).map((v) => v.toFixed(3))).toEqual(Array.from(out.vectors[1]).map((v) => v.toFixed(3)));
    expect(await loadFoundation('mobilenet-v2')).toBe(mobilenet);
  });

  it('refuses a bad image in a batch by its index', async () => {
    await expect(mobilenet.embed([png(8, 8), bombHeader(50_000, 50_000)])).rejects.toMatchObject({ index: 1 });
    await expect(mobilenet.embed([png(8, 8), new Uint8Array([1, 2, 3])])).rejects.toMatchObject({ index: 1 });
  });

  it('classifies images into the 5 labels of the card', async () => {
    expect(nsfw.classify).toBeDefined();
    expect(mobilenet.classify).toBeUndefined();
    const { probabilities } = await nsfw.classify!([png(50, 50), jpg(120, 80)]);
    expect(probabilities).toHaveLength(2);
    for (const p of probabilities) {
      expect(p).toHaveLength(5);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 4);
    }
  });
});
