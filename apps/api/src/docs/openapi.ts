import { Injectable, RequestMethod } from '@nestjs/common';
import { INTERCEPTORS_METADATA, METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { z } from 'zod';
import { IS_ADMIN, IS_PUBLIC, IS_SCRAPE, REQUIRED_SCOPE } from '../auth/principal.js';
import { ENDPOINT, type EndpointSpec } from '../http/endpoint.js';
import { IdempotencyInterceptor } from '../http/idempotency.interceptor.js';
import { ErrorSchema } from '../http/schemas.js';

type JsonSchema = Record<string, unknown>;

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid request: the message and `param` name what is wrong',
  401: 'Missing, unknown, revoked or expired key',
  403: 'Wrong kind of key, missing scope, or suspended tenant',
  404: 'No such object (or it belongs to another tenant)',
  409: 'Conflict, or an Idempotency-Key whose first request is still running',
  413: 'Body too large, or a quota of size exceeded',
  415: 'Unsupported Content-Type',
  416: 'Range not satisfiable: no byte of it is in the content (`Content-Range: bytes */<size>`)',
  422: 'Idempotency-Key reused with another request',
  429: 'Rate limit or quota exceeded (see Retry-After)',
  500: 'Internal error; `error.code` says what failed (a prediction names the worker-side failure)',
  503: 'A dependency (PostgreSQL or Redis) does not answer',
};

const SUCCESS_TEXT: Record<number, string> = {
  206: 'The bytes of the range asked for (`Range`), with `Content-Range`',
  304: 'Not modified: `If-None-Match` names the current ETag (no body)',
};

const header = (description: string) => ({ description, schema: { type: 'string' } });

/** Headers an error answer carries beside its body. */
const ERROR_HEADERS: Record<number, Record<string, unknown>> = {
  416: { 'Content-Range': header('`bytes */<size>`: the size of the whole') },
};

const RATE_HEADERS = {
  'RateLimit-Policy': { description: 'IETF draft: "requests";q=<limit>;w=<window seconds>', schema: { type: 'string' } },
  RateLimit: { description: 'IETF draft: "requests";r=<remaining>;t=<seconds to full>', schema: { type: 'string' } },
};

/** Keys in URLs end up in logs, proxies and browser histories. */
const HEADER_ONLY =
  'taken only in the Authorization header (`?access_token=` and keys in a body are refused with 401), the event stream of `GET /v1/jobs/{id}/stream` included: read it with fetch, or an EventSource that sends headers';

/**
 * Builds the OpenAPI 3.1 document from the routes Nest knows and the zod schemas of their
 * @Endpoint specs (the same schemas that validate requests).
 */
@Injectable()
export class OpenApiBuilder {
  private cached?: JsonSchema;

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
  ) {}

  document(): JsonSchema {
    if (this.cached) return this.cached;
    const components: Record<string, JsonSchema> = {};
    const toSchema = (schema: z.ZodType, io: 'input' | 'output') =>
      hoist(z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as JsonSchema, components);
    // ErrorSchema has an id, so converting it hoists its definition into components.Error.
    toSchema(ErrorSchema, 'output');
    const paths: Record<string, Record<string, unknown>> = {};

    for (const wrapper of this.discovery.getControllers()) {
      const { instance, metatype } = wrapper;
      if (!instance || !metatype) continue;
      const base = String(Reflect.getMetadata(PATH_METADATA, metatype) ?? '');
      const proto = Object.getPrototypeOf(instance);
      for (const name of this.scanner.getAllMethodNames(proto)) {
        const handler = proto[name];
        const spec = Reflect.getMetadata(ENDPOINT, handler) as EndpointSpec | undefined;
        if (!spec) continue;
        const method = RequestMethod[Reflect.getMetadata(METHOD_METADATA, handler) as number].toLowerCase();
        const sub = String(Reflect.getMetadata(PATH_METADATA, handler) ?? '');
        const path = `/${[base, sub].filter((p) => p && p !== '/').join('/')}`.replace(/\/+/g, '/').replace(/:([A-Za-z_]+)/g, '{$1}');
        const targets = [handler, metatype];
        const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets) ?? false;
        const isAdmin = this.reflector.getAllAndOverride<boolean>(IS_ADMIN, targets) ?? false;
        const scrapers = this.reflector.getAllAndOverride<boolean>(IS_SCRAPE, targets) ?? false;
        const scope = this.reflector.getAllAndOverride<string | undefined>(REQUIRED_SCOPE, targets);

        const parameters: unknown[] = [];
        for (const [where, schema] of [
          ['path', spec.params],
          ['query', spec.query],
          ['query', spec.uploadQuery],
        ] as const) {
          if (!schema) continue;
          const json = toSchema(schema, 'input');
          const required = new Set((json.required as string[] | undefined) ?? []);
          for (const [pname, pschema] of Object.entries((json.properties ?? {}) as Record<string, JsonSchema>)) {
            const forUploads = schema === spec.uploadQuery;
            parameters.push({
              name: pname,
              in: where,
              required: where === 'path' || (required.has(pname) && !forUploads),
              ...(forUploads
                ? { description: `With a ${spec.uploads?.join(' or ')} body${required.has(pname) ? ' (required then)' : ''}` }
                : {}),
              schema: pschema,
            });
          }
        }
        for (const [hname, description] of Object.entries(spec.requestHeaders ?? {}))
          parameters.push({ name: hname, in: 'header', required: false, description, schema: { type: 'string' } });
        const idempotent = ((Reflect.getMetadata(INTERCEPTORS_METADATA, handler) as unknown[] | undefined) ?? []).includes(
          IdempotencyInterceptor,
        );
        if (idempotent) {
          parameters.push({
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            description: 'Makes a retry safe: the same key and body replay the first answer (kept 24 h)',
            schema: { type: 'string', maxLength: 255 },
          });
        }
        const status = spec.status ?? (method === 'post' ? 201 : 200);
        const responses: Record<string, unknown> = {};
        const own = Object.entries(spec.responseHeaders ?? {}).map(([hname, description]) => [hname, header(description)] as const);
        const rate = !isPublic && !isAdmin ? Object.entries(RATE_HEADERS) : [];
        const body = spec.response && toSchema(spec.response, 'output');
        for (const answered of [status, ...(spec.alsoAnswers ?? [])]) {
          if (!body) {
            responses[String(answered)] = { description: 'No content' };
            continue;
          }
          const headers = Object.fromEntries([...rate, ...own.filter(([hname]) => sentWith(answered, hname))]);
          responses[String(answered)] = {
            description: SUCCESS_TEXT[answered] ?? spec.summary,
            ...(Object.keys(headers).length ? { headers } : {}),
            ...(answered === 304
              ? {}
              : { content: Object.fromEntries((spec.produces ?? ['application/json']).map((type) => [type, { schema: body }])) }),
          };
        }
        const errors = new Set(spec.errors ?? []);
        if (!isPublic)
          [401, 403].forEach((s) => {
            errors.add(s);
          });
        if (!isPublic && !isAdmin) errors.add(429);
        if (idempotent)
          [409, 422].forEach((s) => {
            errors.add(s);
          });
        if (spec.body)
          [413, 415].forEach((s) => {
            errors.add(s);
          });
        if (!isPublic) errors.add(503);
        for (const code of [...errors].sort()) {
          responses[String(code)] = {
            description: ERROR_TEXT[code] ?? 'Error',
            ...(ERROR_HEADERS[code] ? { headers: ERROR_HEADERS[code] } : {}),
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          };
        }
        (paths[path] ??= {})[method] = {
          operationId: `${metatype.name.replace(/Controller$/, '')}_${name}`,
          summary: spec.summary,
          ...(spec.description ? { description: spec.description } : {}),
          tags: spec.tags,
          security: isPublic ? [] : [{ [isAdmin ? 'adminKey' : 'tenantKey']: [] }, ...(scrapers ? [{ metricsToken: [] }] : [])],
          ...(scope ? { 'x-required-scope': scope } : {}),
          parameters,
          ...(spec.body
            ? {
                requestBody: {
                  required: true,
                  content: {
                    'application/json': { schema: toSchema(spec.body, 'input') },
                    ...Object.fromEntries((spec.uploads ?? []).map((type) => [type, { schema: { type: 'string' } }])),
                  },
                },
              }
            : {}),
          responses,
        };
      }
    }
    this.cached = {
      openapi: '3.1.0',
      info: {
        title: 'aiaas API',
        version: '1.0.0',
        description:
          'Multi-tenant control plane for AI as a service. Errors: `{"error": {type, code, message, param}}`; every response carries `Request-Id`.',
      },
      servers: [{ url: '/' }],
      paths: Object.fromEntries(Object.entries(paths).sort(([a], [b]) => a.localeCompare(b))),
      components: {
        schemas: components,
        securitySchemes: {
          tenantKey: { type: 'http', scheme: 'bearer', description: `A tenant key: aik_...; ${HEADER_ONLY}` },
          adminKey: { type: 'http', scheme: 'bearer', description: `An admin key: adm_...; ${HEADER_ONLY}` },
          metricsToken: {
            type: 'http',
            scheme: 'bearer',
            description: "The operator's METRICS_TOKEN, for Prometheus scrapers (GET /metrics only)",
          },
        },
      },
    };
    return this.cached;
  }
}

/**
 * Whether a success answer of this status carries this header (RFC 9110): a 304 has no body, so
 * none of the headers that describe one; only a 206 says where its range is.
 */
function sentWith(status: number, name: string): boolean {
  if (status === 304) return !name.startsWith('Content-');
  return name !== 'Content-Range' || status === 206;
}

/** Moves a schema's `$defs` (the zod schemas with an id) into the document's components. */
function hoist(schema: JsonSchema, components: Record<string, JsonSchema>): JsonSchema {
  const { $defs, $schema: _ignored, ...rest } = schema as JsonSchema & { $defs?: Record<string, JsonSchema> };
  for (const [id, def] of Object.entries($defs ?? {})) components[id] = rewrite(def) as JsonSchema;
  return rewrite(rest) as JsonSchema;
}

function rewrite(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(rewrite);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [
        k,
        k === '$ref' && typeof v === 'string' ? v.replace('#/$defs/', '#/components/schemas/') : rewrite(v),
      ]),
    );
  }
  return value;
}
