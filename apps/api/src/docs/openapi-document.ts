import 'reflect-metadata';
import type { AppConfig } from '@app/config';
import { type DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import { AppModule } from '../app.module.js';
import { OpenApiBuilder } from './openapi.js';

/**
 * The document `GET /openapi.json` serves, built from the API's controllers with no server,
 * database or Redis: the builder reads only decorator metadata, so bare instances of the
 * controllers stand in for the ones Nest would make. `npm run client:types` generates the
 * client's types from it; test/e2e/client-types.test.ts checks it equals the served one.
 */
export function buildOpenApiDocument(): Record<string, unknown> {
  // forRoot only lists providers here; nothing is constructed or connected.
  const controllers = AppModule.forRoot({} as AppConfig).controllers ?? [];
  const discovery = {
    getControllers: () =>
      controllers.map((metatype) => ({ metatype, instance: Object.create((metatype as { prototype: object }).prototype) as object })),
  } as unknown as DiscoveryService;
  return new OpenApiBuilder(discovery, new MetadataScanner(), new Reflector()).document();
}
