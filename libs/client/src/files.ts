import type { Aiaas } from './client.js';
import type { components } from './generated/openapi.js';

type FileObject = components['schemas']['File'];

export interface FileListParams {
  /** 1 to 100 (the API's default: 20). */
  limit?: number;
  /** The page after this file. */
  starting_after?: string;
  signal?: AbortSignal;
}

export interface DownloadOptions {
  /**
   * One byte range, as HTTP counts it: `start` and `end` both included (`{start: 0, end: 9}` is
   * the first ten bytes); without `end`, to the end of the file.
   */
  range?: { start: number; end?: number };
  signal?: AbortSignal;
}

/** Output files of batch predictions (`POST /v1/jobs {type: "inference", dataset, output}`): `jobs:read` reads, `jobs:write` deletes. */
export class FilesClient {
  constructor(private readonly c: Aiaas) {}

  /** A page of files, newest first (`has_more`: pass the last id as `starting_after`). */
  list(params: FileListParams = {}) {
    const { signal, ...query } = params;
    return this.c.call(this.c.api.GET('/v1/files', { params: { query }, signal }));
  }

  get(id: string, signal?: AbortSignal): Promise<FileObject> {
    return this.c.call(this.c.api.GET('/v1/files/{id}', { params: { path: { id } }, signal }));
  }

  /**
   * The file's bytes (or one range of them) as they arrive, never whole in memory. An error answer
   * (404, 416 for a range past the end) is thrown as an AiaasError before any byte is given.
   */
  async download(id: string, opts: DownloadOptions = {}): Promise<ReadableStream<Uint8Array>> {
    const range = opts.range ? rangeHeader(opts.range) : undefined;
    const pending = this.c.api.GET('/v1/files/{id}/content', {
      params: { path: { id }, header: { Range: range } },
      // The body is the file (NDJSON or CSV), never a JSON document to parse.
      parseAs: 'stream',
      signal: opts.signal,
    });
    const body = await this.c.call(pending);
    const { response } = await pending;
    if (range && response.status !== 206) {
      // The whole file where a range was asked for: handing it on would corrupt a resumed download.
      await body?.cancel().catch(() => undefined);
      throw new Error(`GET /v1/files/${id}/content answered ${response.status}, not 206, to Range: ${range}`);
    }
    // openapi-fetch gives no body (undefined, though typed null) for an empty answer (Content-Length: 0).
    return body ?? new ReadableStream<Uint8Array>({ start: (controller) => controller.close() });
  }

  delete(id: string) {
    return this.c.call(this.c.api.DELETE('/v1/files/{id}', { params: { path: { id } } }));
  }
}

function rangeHeader({ start, end }: { start: number; end?: number }): string {
  const whole = (n: number) => Number.isSafeInteger(n) && n >= 0;
  if (!whole(start) || (end !== undefined && (!whole(end) || end < start)))
    throw new RangeError(`download: range must be whole byte offsets with start <= end, not ${JSON.stringify({ start, end })}`);
  return `bytes=${start}-${end ?? ''}`;
}
