import { applyDecorators, HttpCode, SetMetadata } from '@nestjs/common';
import type { z } from 'zod';

/**
 * What a route takes and gives, in one place: the validation guard parses requests with
 * these schemas and the OpenAPI document is generated from them, so the two cannot drift.
 */
export interface EndpointSpec {
  summary: string;
  description?: string;
  tags: string[];
  body?: z.ZodType;
  query?: z.ZodType;
  params?: z.ZodType;
  /** The success response; `null` for 204. */
  response: z.ZodType | null;
  /**
   * The media types of a success body that is not JSON (a file, an event stream), in place of
   * `application/json`; `response` describes each (`z.string()`, `.meta({ format: 'binary' })` for bytes).
   */
  produces?: string[];
  status?: number;
  /**
   * Other success statuses the route answers with the same body (200 under `Prefer: wait` beside a
   * 202, 206 for a `Range`); a 304 has no body.
   */
  alsoAnswers?: number[];
  /** Headers of the success answers, beside the rate-limit ones: name → what it holds. */
  responseHeaders?: Record<string, string>;
  /** Request headers the route reads (`Range`, `If-None-Match`, `Last-Event-ID`): name → what it does. */
  requestHeaders?: Record<string, string>;
  /** Error statuses beyond the ones every authenticated route can give (401, 403, 429). */
  errors?: number[];
  /** Content types besides JSON that the route takes as a raw stream (uploads such as text/csv). */
  uploads?: string[];
  /** Query parameters of an upload (the JSON body's metadata, when the body is a file). */
  uploadQuery?: z.ZodType;
}

export const ENDPOINT = 'aiaas:endpoint';
/** The status in the spec is also the one the route answers with. */
export const Endpoint = (spec: EndpointSpec) =>
  applyDecorators(SetMetadata(ENDPOINT, spec), ...(spec.status ? [HttpCode(spec.status)] : []));
