/** Content types whose bodies stream to their route instead of being parsed first (dataset uploads). */
export const STREAMED_UPLOAD_TYPES = ['text/csv', 'application/x-ndjson', 'application/zip'] as const;
export type StreamedUploadType = (typeof STREAMED_UPLOAD_TYPES)[number];

/** The media type of a Content-Type header, lower-cased, without its parameters. */
export function mediaType(header: string | undefined): string {
  return String(header ?? '')
    .split(';')[0]
    .trim()
    .toLowerCase();
}

export function isStreamedUpload(header: string | undefined): header is string {
  return (STREAMED_UPLOAD_TYPES as readonly string[]).includes(mediaType(header));
}
