import 'reflect-metadata';
import { loadConfig } from '@app/config';
import { NestFactory } from '@nestjs/core';
import { closeOnSignals, createPino, PinoNestLogger } from '@app/common';
import { WorkerModule } from './worker.module.js';

const config = loadConfig();
const log = createPino(config.logLevel, 'worker');
const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), { logger: new PinoNestLogger(log) });
closeOnSignals(app);
await app.init();
process.stdout.write(JSON.stringify({ event: 'worker.ready', id: config.instanceId, concurrency: config.workerConcurrency }) + '\n');
