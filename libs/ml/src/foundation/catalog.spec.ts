import { describe, expect, it } from '@jest/globals';
import { FOUNDATION_MODELS, foundationModel, foundationWeights } from './catalog.js';

describe('the foundation model catalog', () => {
  it('lists the three platform models under stable ids with complete cards', () => {
    expect(FOUNDATION_MODELS.map((m) => m.id)).toEqual(['universal-sentence-encoder-lite', 'mobilenet-v2', 'nsfw-mobilenet-v2']);
    expect(foundationModel('universal-sentence-encoder-lite')).toMatchObject({
      kind: 'text-embedding',
      dimensions: 512,
      license: 'Apache-2.0',
    });
    expect(foundationModel('mobilenet-v2')).toMatchObject({ kind: 'image-embedding', dimensions: 1280, license: 'MIT' });
    expect(foundationModel('nsfw-mobilenet-v2')?.labels).toEqual(['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy']);
    expect(foundationModel('mobilenet-v2')?.notes).toMatch(/not a pure ImageNet backbone/);
    expect(foundationModel('bert-large')).toBeUndefined();
    for (const model of FOUNDATION_MODELS) expect(model.parameters).toBeGreaterThan(1_000_000);
  });

  it('gives the sha256 and size of the weights as shipped, the same on every call', async () => {
    const use = await foundationWeights(foundationModel('universal-sentence-encoder-lite')!);
    expect(use.bytes).toBeGreaterThan(25_000_000);
    expect(use.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(await foundationWeights(foundationModel('universal-sentence-encoder-lite')!)).toEqual(use);
    const mobilenet = await foundationWeights(foundationModel('mobilenet-v2')!);
    expect(mobilenet.bytes).toBeGreaterThan(3_000_000);
    expect(await foundationWeights(foundationModel('nsfw-mobilenet-v2')!)).toEqual(mobilenet);
    expect(mobilenet.sha256).not.toBe(use.sha256);
  });
});
