import 'reflect-metadata';
import { loadConfig } from '@app/config';
import { NestFactory } from '@nestjs/core';
import { closeOnSignals, createPino, PinoNestLogger } from '@app/common';
import { PREDICT_QUEUE } from '@app/queue';
import { JobEngine } from './engine.js';
import { InferencePool } from './inference/inference-pool.js';
import { WorkerModule } from './worker.module.js';

const config = loadConfig();
const log = createPino(config.logLevel, 'worker');
const app = await NestFactory.createApplicationContext(WorkerModule.forRoot(config), { logger: new PinoNestLogger(log) });
// Running jobs get WORKER_SHUTDOWN_DEADLINE_MS to finish, then are handed back; the rest is closing connections.
closeOnSignals(app, config.workerShutdownDeadlineMs + 15_000);
await app.init();
const engine = app.get(JobEngine);
const inference = app.get(InferencePool);
process.stdout.write(
  `${JSON.stringify({
    event: 'worker.ready',
    id: config.instanceId,
    concurrency: config.workerConcurrency,
    backend: engine.backend?.name,
    gpu: engine.backend?.gpu || config.workerFakeGpu,
    queues: [...engine.queueNames, PREDICT_QUEUE],
    children: engine.pids(),
    inference_children: inference.pids(),
  })}\n`,
);
