/** Foundation models at run time (TF.js): each loaded once per process and shared by every caller. */
import { ensureBackend } from '../backend.js';
import { foundationModel, foundationWeights, type FoundationModelSpec } from './catalog.js';
import { InputError } from './errors.js';
import { ImageEncoder } from './image-encoder.js';
import { TextEncoder } from './text-encoder.js';

export interface EmbedResult {
  /** One per input, in input order. */
  vectors: Float32Array[];
  /** Tokens the encoder read per input (images: 0). */
  tokens: number[];
  /** Whether input i was cut at the encoder's token limit. */
  truncated: boolean[];
}

export interface FoundationHandle {
  spec: FoundationModelSpec;
  sha256: string;
  bytes: number;
  /** Text models take strings; image models take encoded PNG/JPEG bytes. Bad input i: InputError(i). */
  embed(inputs: string[] | Uint8Array[]): Promise<EmbedResult>;
  /** image-classification models: probabilities in `spec.labels` order. */
  classify?(images: Uint8Array[]): Promise<{ probabilities: number[][] }>;
  dispose(): void;
}

/** Internal to libs/ml: the encoder behind a handle, for the features of transfer learning. */
export interface FoundationInternals {
  text?: TextEncoder;
  image?: ImageEncoder;
}

const internals = new WeakMap<FoundationHandle, FoundationInternals>();
const loaded = new Map<string, Promise<FoundationHandle>>();

export function foundationInternals(handle: FoundationHandle): FoundationInternals {
  const found = internals.get(handle);
  if (!found) throw new Error(`the foundation model handle of '${handle.spec.id}' was disposed or not made by loadFoundation`);
  return found;
}

/** Loads a foundation model once per process (cached by id); later calls return the same handle. */
export function loadFoundation(id: string): Promise<FoundationHandle> {
  let pending = loaded.get(id);
  if (!pending) {
    pending = open(id);
    pending.catch(() => loaded.delete(id));
    loaded.set(id, pending);
  }
  return pending;
}

/** The handles loaded in this process (a model cache counts them). */
export async function loadedFoundations(): Promise<FoundationHandle[]> {
  const settled = await Promise.allSettled(loaded.values());
  return settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
}

async function open(id: string): Promise<FoundationHandle> {
  const spec = foundationModel(id);
  if (!spec) throw new Error(`unknown foundation model '${id}'`);
  await ensureBackend();
  const { bytes, sha256 } = await foundationWeights(spec);
  // one handle per id lives at a time (the cache hands out the same one), so disposing it empties the slot
  const forget = (handle: FoundationHandle) => {
    internals.delete(handle);
    loaded.delete(id);
  };
  if (spec.input.type === 'text') {
    const text = await TextEncoder.load(spec);
    const handle: FoundationHandle = {
      spec,
      sha256,
      bytes,
      async embed(inputs) {
        const tokenized = checkList<unknown>(inputs, spec).map((input, i) => text.tokenize(input, i));
        const vectors = await text.encode(tokenized.map((t) => t.ids));
        return { vectors, tokens: tokenized.map((t) => t.ids.length), truncated: tokenized.map((t) => t.total > t.ids.length) };
      },
      dispose() {
        forget(handle);
        text.dispose();
      },
    };
    internals.set(handle, { text });
    return handle;
  }
  const image = await ImageEncoder.load(spec);
  const handle: FoundationHandle = {
    spec,
    sha256,
    bytes,
    async embed(inputs) {
      const images = checkImages(checkList<unknown>(inputs, spec));
      const vectors = await image.embed(images);
      return { vectors, tokens: images.map(() => 0), truncated: images.map(() => false) };
    },
    dispose() {
      forget(handle);
      image.dispose();
    },
  };
  if (spec.kind === 'image-classification') {
    handle.classify = async (images) => ({
      probabilities: (await image.classify(checkImages(checkList(images, spec)))).map((p) => Array.from(p)),
    });
  }
  internals.set(handle, { image });
  return handle;
}

function checkList<T>(inputs: T[], spec: FoundationModelSpec): T[] {
  if (!Array.isArray(inputs)) throw new InputError(0, 'inputs must be an array');
  if (inputs.length > spec.input.max_inputs)
    throw new InputError(spec.input.max_inputs, `at most ${spec.input.max_inputs} inputs per call`);
  return inputs;
}

function checkImages(inputs: unknown[]): Uint8Array[] {
  inputs.forEach((x, i) => {
    if (!(x instanceof Uint8Array)) throw new InputError(i, `input[${i}] is not image bytes`);
  });
  return inputs as Uint8Array[];
}
