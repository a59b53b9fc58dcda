import { batchPredict } from '../support/batch.js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { createTenant, type TenantFixture, until } from '../support/factories.js';
import { pixelBombPng, random, SHAPES, sceneImage, shapeImage } from '../support/image-files.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// Image classification end to end over HTTP: image datasets as JSON records, a CNN trained from scratch, transfer
// learning on MobileNetV2 (frozen, with its features cached, and with its top layers unfrozen), evaluation,
// inference jobs, sync predictions with saliency maps, bad inputs and tenant isolation; real API, worker, TF.js on
// wasm and the real pretrained weights.
let server: RunningApi;
let worker: RunningProcess;
let t: TenantFixture;
let db: pg.Client;

const wait = { headers: { Prefer: 'wait=60' } };
const b64 = (b: Buffer) => b.toString('base64');

beforeAll(async () => {
  [server, worker] = await Promise.all([startApi(), startWorker({ TF_BACKEND: 'wasm', PREDICT_BATCH_DELAY_MS: '5' })]);
  t = await createTenant(server.url, { quotas: { requests_per_minute: 100_000 } });
  db = new pg.Client({ connectionString: process.env.DATABASE_URL });
  await db.connect();
}, 90_000);
afterAll(async () => {
  await db?.end();
  await Promise.all([worker?.stop(), server?.stop()]);
});

describe('a CNN from scratch on small grey images', () => {
  const rand = random(15);
  // PNG and JPEG mixed, as uploads come
  const records = (perClass: number) =>
    SHAPES.flatMap((label) =>
      Array.from({ length: perClass }, (_, i) => ({ image: b64(shapeImage(label, rand, i % 3 === 0 ? 'jpeg' : 'png')), label })),
    );
  let trainSet: string;
  let holdoutSet: string;
  let holdout: Array<{ image: string; label: string }>;

  beforeAll(async () => {
    const up = await t.api.post('/v1/datasets', { name: 'shapes', task: 'image-classification', records: records(120) });
    expect([up.status, up.body.error]).toEqual([201, undefined]);
    expect(up.body.rows).toBe(360);
    const image = up.body.columns.find((c: { name: string }) => c.name === 'image');
    expect(image).toMatchObject({
      type: 'image',
      role: 'image',
      images: { count: 360, min_width: 28, max_width: 28, min_height: 28, max_height: 28 },
    });
    trainSet = up.body.id;
    holdout = records(20);
    holdoutSet = (await t.api.post('/v1/datasets', { name: 'shapes-holdout', task: 'image-classification', records: holdout })).body.id;
    await t.api.post('/v1/models', { name: 'shapes', task: 'image-classification' });
  }, 60_000);

  it('trains, records its preprocessing, and classifies held-out images', async () => {
    const job = await t.api.post(
      '/v1/jobs',
      { type: 'training', model: 'shapes', dataset: trainSet, hyperparameters: { seed: 4 } },
      { headers: { Prefer: 'wait=300' } },
    );
    expect([job.status, job.body.status, job.body.error]).toEqual([200, 'succeeded', null]);
    const version = (await t.api.get('/v1/models/shapes/versions/1')).body;
    expect(version.input_schema).toMatchObject({
      task: 'image-classification',
      image_field: 'image',
      image: { width: 28, height: 28, channels: 1 },
    });
    expect(version.labels).toEqual([...SHAPES].sort());
    const evaluation = await t.api.post('/v1/jobs', { type: 'evaluation', model: 'shapes', dataset: holdoutSet }, wait);
    expect([evaluation.body.status, evaluation.body.error]).toEqual(['succeeded', null]);
    const m = evaluation.body.result.metrics;
    expect(m.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(m.confusion_matrix.labels).toEqual([...SHAPES].sort());
    expect(Object.keys(m.per_class)).toEqual(expect.arrayContaining([...SHAPES]));
    const some = holdout.filter((_, i) => i % 10 === 0);
    const predict = await t.api.post('/v1/models/shapes/predict', { inputs: some.map(({ image }) => ({ image })) }, wait);
    expect(predict.status).toBe(200);
    const right = predict.body.predictions.filter((p: { label: string }, i: number) => p.label === some[i].label).length;
    expect(right).toBeGreaterThanOrEqual(some.length - 1);
  }, 360_000);

  it('resizes an image of another size as training did, takes data: URLs, and explains with a saliency map', async () => {
    const big = shapeImage('column', random(3), 'png', 84);
    const r = await t.api.post(
      '/v1/models/shapes/predict',
      { inputs: [{ image: `data:image/png;base64,${b64(big)}` }], explain: true },
      wait,
    );
    expect([r.status, r.body.error ?? null]).toEqual([200, null]);
    expect(r.body.predictions[0].label).toBe('column');
    const saliency = r.body.explanations[0].saliency;
    expect(saliency.width * saliency.height).toBe(saliency.values.length);
    expect(Math.max(...saliency.values)).toBeCloseTo(1, 5);
    expect(Math.min(...saliency.values)).toBeGreaterThanOrEqual(0);
  }, 60_000);

  it('runs inference jobs on images, inline and over a dataset, with the same answers as predict', async () => {
    const inputs = holdout.slice(0, 4).map(({ image }) => ({ image }));
    const inline = await t.api.post('/v1/jobs', { type: 'inference', model: 'shapes', inputs }, wait);
    expect([inline.body.status, inline.body.error]).toEqual(['succeeded', null]);
    const sync = await t.api.post('/v1/models/shapes/predict', { inputs }, wait);
    expect(inline.body.result.predictions.map((p: { label: string }) => p.label)).toEqual(
      sync.body.predictions.map((p: { label: string }) => p.label),
    );
    const overDataset = await t.api.post('/v1/jobs', { type: 'inference', model: 'shapes', dataset: holdoutSet }, wait);
    expect(overDataset.body.status).toBe('succeeded');
    expect(overDataset.body.result.predictions).toHaveLength(holdout.length);
    // A batch prediction into a file: each image once, in order, the label predict gives.
    const all = await t.api.post('/v1/models/shapes/predict', { inputs: holdout.map(({ image }) => ({ image })) }, wait);
    const batch = await batchPredict(server.url, t, { model: 'shapes', dataset: holdoutSet });
    expect(batch.lines.map((l) => l.row)).toEqual(holdout.map((_, i) => i));
    expect(batch.lines.map((l) => l.prediction.label)).toEqual(all.body.predictions.map((p: { label: string }) => p.label));
  }, 60_000);

  it('reports progress per epoch and cancels a running image training within two seconds', async () => {
    const job = (
      await t.api.post('/v1/jobs', { type: 'training', model: 'shapes', dataset: trainSet, hyperparameters: { epochs: 500, seed: 9 } })
    ).body;
    // in the epoch loop: at least one epoch reported
    await until(
      'an epoch of the image training',
      async () => {
        const row = (await t.api.get(`/v1/jobs/${job.id}`)).body;
        return row.status === 'running' && (row.progress?.epoch ?? 0) >= 1;
      },
      120_000,
    );
    const asked = Date.now();
    const c = await t.api.post(`/v1/jobs/${job.id}/cancel`);
    expect(c.status).toBe(200);
    await until('the image training canceled', async () => (await t.api.get(`/v1/jobs/${job.id}`)).body.status === 'canceled', 10_000);
    expect(Date.now() - asked).toBeLessThan(2_000);
    expect((await t.api.get('/v1/models/shapes/versions')).body.data).toHaveLength(1);
  }, 180_000);

  it('refuses bad images at predict time with a 4xx naming the input, before any worker runs', async () => {
    const predict = (inputs: unknown) => t.api.post('/v1/models/shapes/predict', { inputs }, wait);
    const expectRefusal = async (inputs: unknown, status: number, param: string) => {
      const r = await predict(inputs);
      expect([r.status, r.body.error?.param]).toEqual([status, param]);
      expect(r.body.error.message).toContain(param);
    };
    const ok = { image: b64(shapeImage('ring', random(1))) };
    await expectRefusal([ok, { image: b64(Buffer.from('not an image at all')) }], 400, 'inputs[1].image');
    await expectRefusal([{ image: '%%%not base64%%%' }], 400, 'inputs[0].image');
    await expectRefusal([{ picture: ok.image }], 400, 'inputs[0].image');
    await expectRefusal([ok, ok, { image: b64(pixelBombPng(50_000, 50_000)) }], 413, 'inputs[2].image');
    const empty = await predict([]);
    expect(empty.status).toBe(400);
    // A truncated PNG passes the header check; decoding in the worker refuses it, still naming the input.
    const truncated = shapeImage('bar', random(2)).subarray(0, 60);
    const r = await predict([ok, { image: b64(truncated) }]);
    expect(r.status).toBe(400);
    expect(r.body.error.message).toMatch(/inputs\[1\]/);
  }, 60_000);

  it('refuses training options images do not take, leaving no job behind', async () => {
    const before = (await t.api.get('/v1/jobs?limit=100')).body.data.length;
    const refused = async (body: Record<string, unknown>, code: string, param: string) => {
      const r = await t.api.post('/v1/jobs', { type: 'training', model: 'shapes', dataset: trainSet, ...body });
      expect([r.status, r.body.error?.code, r.body.error?.param]).toEqual([400, code, param]);
    };
    await refused({ architecture: { class_name: 'Sequential' } }, 'parameter_invalid', 'architecture');
    await refused({ base_model: 'universal-sentence-encoder-lite' }, 'base_model_kind_invalid', 'base_model');
    await refused(
      { base_model: 'mobilenet-v2', hyperparameters: { trainable_base_layers: 500 } },
      'hyperparameters_invalid',
      'hyperparameters',
    );
    await refused(
      { base_model: 'mobilenet-v2', hyperparameters: { trainable_base_layers: 'top' } },
      'hyperparameters_invalid',
      'hyperparameters',
    );
    expect((await t.api.get('/v1/jobs?limit=100')).body.data.length).toBe(before);
  });

  it('keeps image datasets, models and predictions to their tenant', async () => {
    const other = await createTenant(server.url);
    expect((await other.api.get(`/v1/datasets/${trainSet}`)).status).toBe(404);
    expect((await other.api.post('/v1/models/shapes/predict', { inputs: [{ image: holdout[0].image }] }, wait)).status).toBe(404);
    await other.api.post('/v1/models', { name: 'shapes', task: 'image-classification' });
    expect((await other.api.post('/v1/jobs', { type: 'training', model: 'shapes', dataset: trainSet })).status).toBe(404);
    expect(
      (await other.api.post('/v1/jobs', { type: 'training', model: 'shapes', dataset: trainSet, base_model: 'mobilenet-v2' })).status,
    ).toBe(404);
    expect((await other.api.get('/v1/datasets?limit=100')).body.data).toHaveLength(0);
  });
});

describe('transfer learning on MobileNetV2', () => {
  const rand = random(27);
  const records = (perClass: number) =>
    (['warm', 'cool'] as const).flatMap((label) =>
      Array.from({ length: perClass }, (_, i) => ({ image: b64(sceneImage(label, rand, i % 2 ? 'png' : 'jpeg')), label })),
    );
  let trainSet: string;
  let holdout: Array<{ image: string; label: string }>;

  beforeAll(async () => {
    trainSet = (await t.api.post('/v1/datasets', { name: 'scenes', task: 'image-classification', records: records(30) })).body.id;
    holdout = records(6);
    await t.api.post('/v1/models', { name: 'scenes', task: 'image-classification' });
  }, 60_000);

  it('trains a head on the frozen backbone’s cached features and predicts held-out colour images', async () => {
    const job = await t.api.post(
      '/v1/jobs',
      { type: 'training', model: 'scenes', dataset: trainSet, base_model: 'mobilenet-v2', hyperparameters: { seed: 2 } },
      { headers: { Prefer: 'wait=300' } },
    );
    expect([job.status, job.body.status, job.body.error]).toEqual([200, 'succeeded', null]);
    const card = (await t.api.get('/v1/foundation-models/mobilenet-v2')).body;
    const version = (await t.api.get('/v1/models/scenes/versions/1')).body;
    expect(version.base_model).toEqual({ id: 'mobilenet-v2', sha256: card.sha256 });
    expect(version.bytes).toBeLessThan(card.bytes / 10);
    const sets = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM feature_sets WHERE dataset_id = $1', [trainSet]);
    expect(sets.rows[0].n).toBe(1);
    const predict = await t.api.post('/v1/models/scenes/predict', { inputs: holdout.map(({ image }) => ({ image })), explain: true }, wait);
    expect([predict.status, predict.body.error ?? null]).toEqual([200, null]);
    const right = predict.body.predictions.filter((p: { label: string }, i: number) => p.label === holdout[i].label).length;
    expect(right).toBeGreaterThanOrEqual(holdout.length - 1);
    expect(predict.body.explanations[0].saliency.values.length).toBeGreaterThan(0);
    // A batch prediction through the transfer-learned head gives the same labels.
    const holdoutSet = (await t.api.post('/v1/datasets', { name: 'scenes-holdout', task: 'image-classification', records: holdout })).body
      .id;
    const batch = await batchPredict(server.url, t, { model: 'scenes', dataset: holdoutSet });
    expect(batch.lines.map((l) => l.prediction.label)).toEqual(predict.body.predictions.map((p: { label: string }) => p.label));
  }, 360_000);

  it('unfreezes the top of the backbone with trainable_base_layers, storing only that part', async () => {
    const job = await t.api.post(
      '/v1/jobs',
      {
        type: 'training',
        model: 'scenes',
        dataset: trainSet,
        base_model: 'mobilenet-v2',
        hyperparameters: { seed: 2, epochs: 2, trainable_base_layers: 2 },
      },
      { headers: { Prefer: 'wait=300' } },
    );
    expect([job.status, job.body.status, job.body.error]).toEqual([200, 'succeeded', null]);
    const card = (await t.api.get('/v1/foundation-models/mobilenet-v2')).body;
    const version = (await t.api.get('/v1/models/scenes/versions/2')).body;
    expect(version.base_model.id).toBe('mobilenet-v2');
    // the two top layers with weights (the 1×1 convolution to 1,280 channels is most of MobileNetV2's parameters) and the head
    expect(version.bytes).toBeLessThan(card.bytes * 0.75);
    const predict = await t.api.post(
      '/v1/models/scenes/predict',
      { version: 2, inputs: holdout.slice(0, 2).map(({ image }) => ({ image })) },
      wait,
    );
    expect([predict.status, predict.body.predictions?.length]).toEqual([200, 2]);
  }, 360_000);
});
