import 'reflect-metadata';
import { ApiError, createPino, newId, PinoNestLogger } from '@app/common';
import type { AppConfig } from '@app/config';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AdminBootstrap, type AdminKeyOutcome } from './admin/admin-bootstrap.js';
import { AppModule } from './app.module.js';
import { Authenticator } from './auth/authenticator.js';
import { recordRequest } from './health/metrics.js';
import { answerClientError, answerExpectation, missingHost } from './http/client-errors.js';
import { sendError } from './http/errors.js';
import { TimedBody } from './http/body-timeout.js';
import { isStreamedUpload, STREAMED_UPLOAD_TYPES } from './http/upload-types.js';
import { jsonBodyProblem, MAX_JSON_DEPTH } from './http/json-body.js';

export interface StartedApi {
  app: NestFastifyApplication;
  url: string;
  adminKey: AdminKeyOutcome;
}

export async function startApi(config: AppConfig): Promise<StartedApi> {
  const log = createPino(config.logLevel, 'api');
  const adapter = new FastifyAdapter({
    bodyLimit: config.bodyLimitBytes,
    genReqId: () => newId('req'),
    requestIdHeader: false,
    return503OnClosing: true,
    // Parse errors, oversized headers and slow requests, answered in our shape before any route runs.
    clientErrorHandler: answerClientError,
    // Node answers a missing Host with a bodiless 400; the onRequest hook below answers in our shape.
    http: { requireHostHeader: false },
    routerOptions: { maxParamLength: 200, ignoreDuplicateSlashes: true },
    // Errors the router raises before any hook runs (bad URL encoding, over-long ids) get our shape too.
    frameworkErrors: (err: Error, req: FastifyRequest, reply: FastifyReply) => {
      reply.header('Request-Id', req.id);
      sendError(reply, req, err);
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRoot(config), adapter, {
    logger: new PinoNestLogger(log),
    bufferLogs: false,
  });
  const fastify = app.getHttpAdapter().getInstance() as unknown as FastifyInstance;
  // JSON, and the upload types below; anything else is a 415, not a string body.
  fastify.removeContentTypeParser('text/plain');
  // JSON as Fastify parses it (prototype poisoning refused), once it is known to be storable. The
  // fault suite's fuzz pass found two 500s here: a body nested 10,000 deep overflowed the stack of
  // the JSON.stringify that stores it, and a "\u0000" in any string failed PostgreSQL's insert.
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  app.useBodyParser('application/json', { bodyLimit: config.bodyLimitBytes }, (req, body, done) => {
    const problem = jsonBodyProblem(body);
    if (problem === 'too_deep')
      return done(
        ApiError.invalid('body_too_deep', `The body nests arrays and objects more than ${MAX_JSON_DEPTH} levels deep`),
        undefined,
      );
    if (problem === 'nul')
      return done(ApiError.invalid('body_invalid_characters', 'The body contains the character U+0000, which cannot be stored'), undefined);
    parseJson(req as FastifyRequest, body as unknown as string, done);
  });
  // Uploads stream to the route, which parses them row by row; routes that take none answer 415.
  fastify.addContentTypeParser([...STREAMED_UPLOAD_TYPES], (_req, payload, done) => done(null, payload));
  fastify.setErrorHandler((err, req, reply) => sendError(reply, req, err));
  fastify.server.on('checkExpectation', answerExpectation);
  // Callback-style hooks: an async hook costs a promise per request on the hottest path.
  fastify.addHook('onRequest', (req, reply, done) => {
    reply.header('Request-Id', req.id);
    const refused = missingHost(req.raw);
    if (refused) {
      reply.header('Connection', 'close');
      sendError(reply, req, refused);
      return;
    }
    done();
  });
  // Bodies can be large (dataset records, imported models): the key is resolved first, and a
  // request with a body and no valid key is answered before any of its body is read.
  fastify.addHook('onRequest', app.get(Authenticator).onRequest);
  // Every body gets deadlines and ends when its client leaves (docs/security.md).
  fastify.addHook('preParsing', (req, reply, payload, done) => {
    if (req.headers['content-length'] === undefined && req.headers['transfer-encoding'] === undefined) return done(null, payload);
    const streamed = isStreamedUpload(req.headers['content-type']);
    const body = new TimedBody(payload, {
      idleMs: config.bodyIdleTimeoutMs,
      totalMs: streamed ? config.uploadTimeoutMs : config.bodyTimeoutMs,
    });
    // An answer sent before the body was read (a refusal): drop the rest, or the connection stalls.
    reply.raw.once('finish', () => body.drain());
    done(null, body);
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    const route = req.routeOptions?.url ?? 'unmatched';
    recordRequest(req.method, route, reply.statusCode, reply.elapsedTime / 1000);
    if (log.isLevelEnabled('info')) {
      const user = req.user;
      log.info({
        request_id: req.id,
        tenant_id: user?.kind === 'tenant' ? user.tenantId : undefined,
        key_id: user?.keyId,
        method: req.method,
        route,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      });
    }
    done();
  });
  await app.init();
  const adminKey = await app.get(AdminBootstrap).ensureAdminKey();
  await app.listen({ port: config.port, host: config.host });
  const address = fastify.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  return { app, url: `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${port}`, adminKey };
}
