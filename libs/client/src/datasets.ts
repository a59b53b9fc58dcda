import type { Aiaas } from './client.js';
import type { components } from './generated/openapi.js';
import { imageArchiveOf, type ImageArchive } from './images/image-archive.js';
import { streamingFetch } from './transport.js';

type Dataset = components['schemas']['Dataset'];

export interface UploadOptions {
  name: string;
  task: 'classification' | 'regression' | 'text-classification' | 'image-classification';
  label?: string;
  text_field?: string;
  /** The file's bytes or text. */
  body: Uint8Array | string;
  contentType: 'text/csv' | 'application/x-ndjson';
}

export interface UploadProgress {
  sentBytes: number;
  /** null when a stream of unknown length is sent. */
  totalBytes: number | null;
}

export interface ImageUploadOptions {
  /** The dataset name; for a path, the folder's name (or the file's without `.zip`) by default. */
  name?: string;
  /** Told as bytes are handed to the connection (at most every 64 KiB). */
  onProgress?: (progress: UploadProgress) => void;
  signal?: AbortSignal;
}

/** A zip archive already in hand, as a stream (a Node Readable is an AsyncIterable). */
export type ZipStream = AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>;

export class DatasetsClient {
  constructor(private readonly c: Aiaas) {}

  /** Uploads a CSV or NDJSON file as it is (the API parses and checks it as it streams in). */
  upload(opts: UploadOptions): Promise<Dataset> {
    const { body, contentType, ...query } = opts;
    return this.c.call(
      this.c.api.POST('/v1/datasets', {
        params: { query },
        // The typed body is the JSON form; an upload is sent as its own bytes.
        body: body as never,
        bodySerializer: (b: unknown) => b as string,
        headers: { 'Content-Type': contentType },
      }),
    );
  }

  /**
   * Uploads an `image-classification` dataset as `application/zip`: a folder of class folders
   * (`photos/cat/1.jpg`, zipped as it is read, with an exact Content-Length), a `.zip` file, an
   * ImageArchive from `imageArchiveOf` (to see what a folder holds first), or a zip stream.
   * The archive is never whole in memory. A path or an ImageArchive is re-read for a retry
   * (429, 503, a refused connection); a stream is sent once. Local problems throw ImageFileError.
   */
  uploadImages(source: string | ImageArchive, opts?: ImageUploadOptions): Promise<Dataset>;
  uploadImages(source: ZipStream, opts: ImageUploadOptions & { name: string; contentLength?: number }): Promise<Dataset>;
  async uploadImages(
    source: string | ImageArchive | ZipStream,
    opts: ImageUploadOptions & { contentLength?: number } = {},
  ): Promise<Dataset> {
    const archive = typeof source === 'string' ? await imageArchiveOf(source) : isArchive(source) ? source : null;
    const name = opts.name ?? archive?.name;
    if (!name) throw new TypeError('uploadImages: a stream needs opts.name');
    const totalBytes = archive ? archive.length : (opts.contentLength ?? null);
    // An error of the source (a file that changed or vanished) is thrown as itself, not as a failed connection.
    let sourceError: unknown;
    const body = () => {
      if (sourceError !== undefined) throw sourceError;
      const chunks = archive ? archive.open() : (source as ZipStream);
      return counted(chunks, totalBytes, opts.onProgress, (err) => (sourceError = err));
    };
    const pending = this.c.api.POST('/v1/datasets', {
      params: { query: { name, task: 'image-classification' } },
      body: body() as never,
      bodySerializer: (b: unknown) => b as ReadableStream<Uint8Array>,
      headers: { 'Content-Type': 'application/zip', ...(totalBytes !== null ? { 'Content-Length': String(totalBytes) } : {}) },
      fetch: streamingFetch(this.c.transport, archive ? body : undefined),
      signal: opts.signal,
      duplex: 'half',
      // Following redirects makes fetch (undici) tee the body for a replay it never does, holding
      // every byte sent until the end (nodejs/undici#4058); the API does not redirect uploads.
      redirect: 'error',
    } as never);
    try {
      return (await this.c.call(pending)) as Dataset;
    } catch (err) {
      throw sourceError ?? err;
    }
  }
}

function isArchive(source: ImageArchive | ZipStream): source is ImageArchive {
  return typeof (source as ImageArchive).open === 'function' && typeof (source as ImageArchive).length === 'number';
}

/** The chunks as a pull stream (nothing is read ahead of the connection), counting what goes out. */
function counted(
  source: ZipStream,
  totalBytes: number | null,
  onProgress: ImageUploadOptions['onProgress'],
  onError: (err: unknown) => void,
): ReadableStream<Uint8Array> {
  // A web ReadableStream is async-iterable in Node too.
  const it = (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
  let sentBytes = 0;
  onProgress?.({ sentBytes, totalBytes });
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let next: IteratorResult<Uint8Array>;
        try {
          next = await it.next();
        } catch (err) {
          onError(err);
          controller.error(err);
          return;
        }
        if (next.done) {
          controller.close();
          return;
        }
        const chunk = next.value instanceof Uint8Array ? next.value : new Uint8Array(next.value as ArrayBufferLike);
        sentBytes += chunk.length;
        controller.enqueue(chunk);
        onProgress?.({ sentBytes, totalBytes });
      },
      async cancel(reason) {
        await it.return?.(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
