import type { Aiaas } from './client.js';
import { AiaasError, JobFailedError } from './errors.js';
import type { components } from './generated/openapi.js';
import { imageKindOf, ImageFileError, readImageFile } from './images/image-file.js';

type Job = components['schemas']['Job'];

/** A saliency map of one image: `values` row-major on a `width` × `height` grid (coarser than the image). */
export interface SaliencyMap {
  width: number;
  height: number;
  values: number[];
}

export interface ImagePrediction {
  /** The class with the highest probability. */
  label: string;
  /** Every class's probability. */
  probabilities: Record<string, number>;
  /** The version that answered (an alias with a traffic split picks one per request). */
  version: number;
  /** With `explain: true`. */
  explanation?: SaliencyMap;
  /** The input's path, when it was given as one. */
  file?: string;
}

export interface ImagePredictOptions {
  version?: number;
  alias?: string;
  /** A saliency map per image. */
  explain?: boolean;
  /** Images per request (default 32): large lists go as several requests, read from disk one batch at a time. */
  batchSize?: number;
  /** How long the API may take to answer inline before the job is polled instead (`Prefer: wait=N`, default 60 s). */
  waitSeconds?: number;
  signal?: AbortSignal;
}

export class ModelsClient {
  constructor(private readonly c: Aiaas) {}

  /**
   * Predicts an `image-classification` model on images: PNG or JPEG bytes, or paths of such files
   * (read and checked here: ImageFileError names a missing file or a non-image). One prediction
   * per image, in order. An error of the API about one input names its file (or its index).
   */
  async predictImages(
    model: string,
    images: ReadonlyArray<Uint8Array | string>,
    opts: ImagePredictOptions = {},
  ): Promise<ImagePrediction[]> {
    if (images.length === 0) throw new RangeError('predictImages: no images');
    const batchSize = Math.max(1, opts.batchSize ?? 32);
    const predictions: ImagePrediction[] = [];
    for (let start = 0; start < images.length; start += batchSize) {
      const batch = images.slice(start, start + batchSize);
      const inputs = await Promise.all(
        batch.map(async (image, i) => ({ image: Buffer.from(await bytesOf(image, start + i)).toString('base64') })),
      );
      const answer = await this.predictBatch(model, inputs, opts).catch((err: unknown) => {
        throw namingInput(err, images, start);
      });
      answer.forEach((p, i) => {
        predictions.push(typeof batch[i] === 'string' ? { ...p, file: batch[i] as string } : p);
      });
    }
    return predictions;
  }

  private async predictBatch(model: string, inputs: Array<{ image: string }>, opts: ImagePredictOptions): Promise<ImagePrediction[]> {
    const answer = await this.c.call(
      this.c.api.POST('/v1/models/{id}/predict', {
        params: { path: { id: model } },
        body: {
          inputs,
          ...(opts.version !== undefined ? { version: opts.version } : {}),
          ...(opts.alias ? { alias: opts.alias } : {}),
          ...(opts.explain ? { explain: true } : {}),
        },
        headers: { Prefer: `wait=${opts.waitSeconds ?? 60}` },
        signal: opts.signal,
      }),
    );
    let done: { predictions?: unknown[]; explanations?: unknown[]; job: Job } = { ...answer, job: answer };
    if (!(answer.status === 'succeeded' && answer.predictions)) {
      // 202: not done within the wait; the job's result holds the predictions.
      const job = await this.c.jobs.wait(answer.id, { signal: opts.signal });
      done = { ...(job.result as { predictions?: unknown[]; explanations?: unknown[] } | null), job };
    }
    if (done.job.status !== 'succeeded') throw new JobFailedError(done.job);
    const list = (done.predictions ?? []) as Array<Omit<ImagePrediction, 'explanation' | 'file'>>;
    return list.map((p, i) => {
      // the API gives an image's explanation as {saliency: {width, height, values}}
      const explanation = (done.explanations?.[i] as { saliency?: SaliencyMap } | undefined)?.saliency;
      return { label: p.label, probabilities: p.probabilities, version: p.version, ...(explanation ? { explanation } : {}) };
    });
  }
}

async function bytesOf(image: Uint8Array | string, index: number): Promise<Uint8Array> {
  if (typeof image === 'string') return (await readImageFile(image)).bytes;
  if (!imageKindOf(image)) throw new ImageFileError('not_an_image', `images[${index}]`, `images[${index}] is not a PNG or JPEG image`);
  return image;
}

/** The API names a bad input by its index in the request (`inputs[3]`, `inputs.3.image`): say which image that is. */
function namingInput(err: unknown, images: ReadonlyArray<Uint8Array | string>, start: number): unknown {
  if (!(err instanceof AiaasError)) return err;
  const index = /^inputs\D*(\d+)/.exec(err.param ?? '') ?? /\binputs?\[?\.?(\d+)/.exec(err.message);
  if (!index) return err;
  const at = start + Number(index[1]);
  if (at >= images.length) return err;
  const which = typeof images[at] === 'string' ? (images[at] as string) : `images[${at}]`;
  return new AiaasError({
    status: err.status,
    type: err.type,
    code: err.code,
    message: `${which}: ${err.message}`,
    param: err.param,
    requestId: err.requestId,
    retryAfterSeconds: err.retryAfterSeconds,
    cause: err,
  });
}
