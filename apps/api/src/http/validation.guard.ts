import { type CanActivate, type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ApiError } from '@app/common';
import type { FastifyRequest } from 'fastify';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { ENDPOINT, type EndpointSpec } from './endpoint.js';

type Part = 'body' | 'query' | 'params';

/**
 * Parses body, query and path parameters with the route's schemas; the first problem is a 400
 * naming it. A guard, not an interceptor: it runs after authentication, and a route without
 * interceptors skips Nest's per-request RxJS pipeline, about a third of a small request's cost here.
 */
@Injectable()
export class ValidationGuard implements CanActivate {
  constructor(private readonly reflector: Reflector) {}

  canActivate(context: ExecutionContext): boolean {
    const spec = this.reflector.get<EndpointSpec | undefined>(ENDPOINT, context.getHandler());
    if (spec) {
      const req = context.switchToHttp().getRequest<FastifyRequest & Record<Part, unknown>>();
      if (req.body instanceof Readable) {
        // A streamed upload: only routes that name its content type take one.
        const type = String(req.headers['content-type'] ?? '')
          .split(';')[0]
          .trim()
          .toLowerCase();
        if (!spec.uploads?.includes(type)) {
          throw new ApiError(
            415,
            'invalid_request_error',
            'unsupported_media_type',
            `Unsupported Content-Type '${type}' for this route: send application/json`,
          );
        }
        req.params = parse(spec.params ?? z.object({}), req.params, 'params');
        req.query = parse(spec.uploadQuery ?? z.object({}).strict(), req.query, 'query');
        return true;
      }
      for (const part of ['params', 'query', 'body'] as const) {
        const schema = spec[part];
        if (!schema) continue;
        if (part === 'body' && (req.body === undefined || req.body === null)) {
          throw ApiError.invalid('body_missing', 'The request needs a JSON body', undefined);
        }
        req[part] = parse(schema, req[part], part);
      }
    }
    return true;
  }
}

export function parse<T>(schema: z.ZodType<T>, value: unknown, part: Part): T {
  const result = schema.safeParse(value ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') path.push(issue.keys[0]);
  const param = path.join('.') || undefined;
  const where = part === 'body' ? '' : ` in the ${part === 'params' ? 'path' : 'query string'}`;
  const message =
    issue.code === 'unrecognized_keys'
      ? `Unknown parameter${issue.keys.length > 1 ? 's' : ''}${where}: ${issue.keys.join(', ')}`
      : `Invalid ${param ?? part}${where}: ${issue.message}`;
  return fail(param, message, issue.code === 'unrecognized_keys' ? 'parameter_unknown' : 'parameter_invalid');
}

function fail(param: string | undefined, message: string, code: string): never {
  throw ApiError.invalid(code, message, param);
}
