/**
 * Images for models trained from scratch, in plain JS (no TF.js: the API checks inputs with the same code): base64 →
 * PNG/JPEG bytes → RGB → resized to the model's size → grey or RGB, as bytes. Training and serving both go through
 * `imagePixels`, so a served image is exactly what a training image was.
 */
import { IMAGE_LIMITS, type ImageInputLimits } from '../foundation/catalog.js';
import { isInputError } from '../foundation/errors.js';
import { checkImage, decodeImage, type RgbImage } from '../foundation/image-decode.js';
import { MlError } from '../errors.js';
import { imageHeader } from '../foundation/image-header.js';
import type { ImagePreprocessing, Row } from '../types.js';
import { Problems } from './values.js';

/** The longest side a model from scratch reads; larger images are shrunk (keeping their aspect ratio). */
export const MAX_IMAGE_SIDE = 64;
/** The shortest side: smaller images are enlarged, so that two poolings still leave a few pixels. */
export const MIN_IMAGE_SIDE = 8;

export const IMAGE_SCALE = 1 / 255;

/** A problem with one image, as a message without the row's name (the caller prefixes it). */
export class ImageProblem extends Error {}

/** The bytes of a base64 field, or an ImageProblem naming what is wrong. */
export function imageBytes(raw: unknown, field: string): Uint8Array {
  if (raw === undefined || raw === null) throw new ImageProblem(`has no image field '${field}'`);
  if (typeof raw !== 'string' || raw.length === 0) throw new ImageProblem(`the image field '${field}' is not a base64 string`);
  // data: URLs are what browsers hand over; accept their payload
  const payload = raw.startsWith('data:') ? raw.slice(raw.indexOf(',') + 1) : raw;
  if (!/^[A-Za-z0-9+/\r\n]*={0,2}\s*$/.test(payload)) throw new ImageProblem(`the image field '${field}' is not base64`);
  const bytes = new Uint8Array(Buffer.from(payload, 'base64'));
  if (bytes.length === 0) throw new ImageProblem(`the image field '${field}' is empty`);
  return bytes;
}

/** Header checks only (format, size, pixel limit): what the API runs before queueing. */
export function checkImageBytes(bytes: Uint8Array, limits: ImageInputLimits = IMAGE_LIMITS): { width: number; height: number } {
  return rethrow(() => checkImage(bytes, 0, limits));
}

/** Decodes to RGB after the header checks; undecodable or truncated bytes are an ImageProblem. */
export function decodeRgb(bytes: Uint8Array, limits: ImageInputLimits = IMAGE_LIMITS): RgbImage {
  return rethrow(() => decodeImage(bytes, 0, limits));
}

function rethrow<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (isInputError(err)) throw new ImageProblem(err.message.replace(/^input\[\d+\] /, ''));
    throw err;
  }
}

/** Whether every pixel has R = G = B. */
export function isGrey(image: RgbImage): boolean {
  const d = image.data;
  for (let p = 0; p < d.length; p += 3) if (d[p] !== d[p + 1] || d[p] !== d[p + 2]) return false;
  return true;
}

/** The model's input size for images of these sizes: the median width and height, shrunk to MAX_IMAGE_SIDE. */
export function chooseImageSize(sizes: Array<{ width: number; height: number }>): { width: number; height: number } {
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)];
  let width = median(sizes.map((s) => s.width));
  let height = median(sizes.map((s) => s.height));
  const shrink = Math.min(1, MAX_IMAGE_SIDE / Math.max(width, height));
  const grow = Math.max(1, MIN_IMAGE_SIDE / Math.min(width, height));
  const factor = shrink < 1 ? shrink : grow;
  width = Math.min(MAX_IMAGE_SIDE, Math.max(MIN_IMAGE_SIDE, Math.round(width * factor)));
  height = Math.min(MAX_IMAGE_SIDE, Math.max(MIN_IMAGE_SIDE, Math.round(height * factor)));
  return { width, height };
}

/** The image as the model reads it: resized to the preprocessing's size, `channels` bytes per pixel, row-major. */
export function imagePixels(image: RgbImage, pre: Pick<ImagePreprocessing, 'width' | 'height' | 'channels'>, out?: Uint8Array): Uint8Array {
  const rgb = resizeRgb(image, pre.width, pre.height);
  const pixels = pre.width * pre.height;
  const target = out ?? new Uint8Array(pixels * pre.channels);
  if (pre.channels === 3) target.set(rgb.data);
  else
    for (let p = 0; p < pixels; p++)
      target[p] = Math.round(0.299 * rgb.data[p * 3] + 0.587 * rgb.data[p * 3 + 1] + 0.114 * rgb.data[p * 3 + 2]);
  return target;
}

/**
 * Bilinear resize with pixel centres aligned (TensorFlow's half_pixel_centers), after averaging whole blocks of
 * pixels while the image is more than twice the target size (bilinear alone would skip most pixels: aliasing).
 */
export function resizeRgb(image: RgbImage, width: number, height: number): RgbImage {
  let current = image;
  while (current.width >= 2 * width && current.height >= 2 * height) current = halve(current);
  if (current.width === width && current.height === height) return current;
  const { width: w, height: h, data } = current;
  const out = new Uint8Array(width * height * 3);
  const sx = w / width;
  const sy = h / height;
  for (let y = 0; y < height; y++) {
    const fy = Math.min(h - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const dy = fy - y0;
    for (let x = 0; x < width; x++) {
      const fx = Math.min(w - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const dx = fx - x0;
      for (let c = 0; c < 3; c++) {
        const a = data[(y0 * w + x0) * 3 + c];
        const b = data[(y0 * w + x1) * 3 + c];
        const d = data[(y1 * w + x0) * 3 + c];
        const e = data[(y1 * w + x1) * 3 + c];
        out[(y * width + x) * 3 + c] = Math.round((a * (1 - dx) + b * dx) * (1 - dy) + (d * (1 - dx) + e * dx) * dy);
      }
    }
  }
  return { width, height, data: out };
}

/** Each 2×2 block averaged into one pixel (an odd last row or column is dropped). */
function halve(image: RgbImage): RgbImage {
  const width = image.width >> 1;
  const height = image.height >> 1;
  const { width: w, data } = image;
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = (2 * y * w + 2 * x) * 3;
      const q = p + w * 3;
      for (let c = 0; c < 3; c++) out[(y * width + x) * 3 + c] = (data[p + c] + data[p + 3 + c] + data[q + c] + data[q + 3 + c] + 2) >> 2;
    }
  }
  return { width, height, data: out };
}

/**
 * The preprocessing of a model from scratch, fitted on the training rows: the median size (capped) and grey when every
 * image is grey (by its header, else by its pixels). Every bad image is listed in one MlError, named by row.
 */
export function fitImage(field: string, rows: Row[], rowNumber: (k: number) => number): ImagePreprocessing {
  const problems = new Problems();
  const sizes: Array<{ width: number; height: number }> = [];
  let grey = true;
  rows.forEach((row, k) => {
    try {
      if (!row || typeof row !== 'object') throw new ImageProblem('is not an object');
      const bytes = imageBytes(row[field], field);
      sizes.push(checkImageBytes(bytes));
      if (grey && !headerSaysGrey(bytes)) grey = isGrey(decodeRgb(bytes));
    } catch (err) {
      if (!(err instanceof ImageProblem)) throw err;
      problems.add(`row ${rowNumber(k)} ${err.message}`);
    }
  });
  if (problems.any) throw MlError.list('invalid_data', 'Invalid dataset', problems.all);
  return { kind: 'image', image_field: field, ...chooseImageSize(sizes), channels: grey ? 1 : 3, resize: 'bilinear', scale: IMAGE_SCALE };
}

/** A PNG of colour type grey (0) or grey with alpha (4), or a JPEG of one component. */
function headerSaysGrey(bytes: Uint8Array): boolean {
  const header = imageHeader(bytes);
  if (header?.format === 'png') return bytes[25] === 0 || bytes[25] === 4;
  if (header?.format !== 'jpeg') return false;
  let at = 2;
  while (at + 9 < bytes.length && bytes[at] === 0xff) {
    const marker = bytes[at + 1];
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) return bytes[at + 9] === 1;
    at += 2 + ((bytes[at + 2] << 8) | bytes[at + 3]);
  }
  return false;
}
