/** Datasets with known answers, made from a seed: for the tests and the benchmark. */
import { seededRandom } from './random.js';
import type { Row } from './types.js';

function gaussian(random: () => number): number {
  const u = Math.max(random(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * random());
}

/** Classes as well-separated Gaussian blobs; features on different scales so that standardization matters. */
export function blobRows(n: number, options: { features?: number; classes?: number; seed?: number; spread?: number } = {}): Row[] {
  const d = options.features ?? 4;
  const k = options.classes ?? 3;
  const random = seededRandom(options.seed ?? 1);
  const scales = Array.from({ length: d }, (_, j) => 10 ** ((j % 3) - 1));
  const centers = Array.from({ length: k }, () => Array.from({ length: d }, () => (random() * 2 - 1) * 4));
  return Array.from({ length: n }, (_, i) => {
    const c = i % k;
    const row: Row = {};
    for (let j = 0; j < d; j++) row[`x${j + 1}`] = (centers[c][j] + gaussian(random) * (options.spread ?? 0.5)) * scales[j];
    row.label = `class_${String.fromCharCode(97 + c)}`;
    return row;
  });
}

/** y = w·x + b with a little noise; returns the law too. */
export function linearRows(
  n: number,
  options: { features?: number; seed?: number; noise?: number } = {},
): { rows: Row[]; weights: number[]; bias: number } {
  const d = options.features ?? 3;
  const random = seededRandom(options.seed ?? 2);
  const weights = Array.from({ length: d }, (_, j) => (j % 2 === 0 ? 1 : -1) * (2 + j));
  const bias = 50;
  const rows = Array.from({ length: n }, () => {
    const row: Row = {};
    let y = bias;
    for (let j = 0; j < d; j++) {
      const x = random() * 20 - 10;
      row[`x${j + 1}`] = x;
      y += weights[j] * x;
    }
    row.y = y + gaussian(random) * (options.noise ?? 0.5);
    return row;
  });
  return { rows, weights, bias };
}

const FILLER = 'the a an of to and in on at with for from by this that it is was be are as or but not very quite just some any'.split(' ');
const PUNCTUATION = ['.', ',', '!', '?', ';'];

/** Short texts of filler words, each class marked by one of its planted keywords somewhere in the text. */
export function keywordTexts(n: number, options: { classes?: number; seed?: number; length?: [number, number] } = {}): Row[] {
  const k = options.classes ?? 3;
  const random = seededRandom(options.seed ?? 3);
  const [minLength, maxLength] = options.length ?? [6, 14];
  const keywords = Array.from({ length: k }, (_, c) => [`alpha${c}`, `beta${c}`, `gamma${c}`]);
  return Array.from({ length: n }, (_, i) => {
    const c = i % k;
    const length = minLength + Math.floor(random() * (maxLength - minLength + 1));
    const words = Array.from({ length }, () => FILLER[Math.floor(random() * FILLER.length)]);
    const keyword = keywords[c][Math.floor(random() * keywords[c].length)];
    words[Math.floor(random() * length)] = random() < 0.5 ? keyword.toUpperCase() : keyword;
    const text = words.join(' ') + PUNCTUATION[Math.floor(random() * PUNCTUATION.length)];
    return { text, topic: `topic_${c}` };
  });
}
