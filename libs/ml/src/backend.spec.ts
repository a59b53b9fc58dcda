import { describe, expect, it } from '@jest/globals';
import * as tf from '@tensorflow/tfjs';
import { initBackend } from './backend.js';
import { MlError } from './errors.js';

describe('backend selection', () => {
  it('falls back from tfjs-node-gpu and tfjs-node (not installed here) to wasm, saying why', async () => {
    const info = await initBackend();
    expect(info.name).toBe('wasm');
    expect(info.gpu).toBe(false);
    expect(info.skipped.map((s) => s.name)).toEqual(['tfjs-node-gpu', 'tfjs-node']);
    expect(info.skipped[0].reason).toMatch(/Cannot find (module|package) '@tensorflow\/tfjs-node-gpu'/);
    expect(tf.getBackend()).toBe('wasm');
    expect(await initBackend()).toBe(info);
  });

  it('takes a forced backend, and switches when forced to another', async () => {
    expect(await initBackend('cpu')).toEqual({ name: 'cpu', gpu: false, skipped: [] });
    expect(tf.getBackend()).toBe('cpu');
    expect((await initBackend(' WASM ')).name).toBe('wasm');
  });

  it('fails clearly when the forced backend cannot load or does not exist', async () => {
    const missing = await initBackend('tfjs-node').catch((err: unknown) => err as MlError);
    expect(missing).toBeInstanceOf(MlError);
    expect((missing as MlError).code).toBe('backend_unavailable');
    expect((missing as MlError).message).toMatch(/^The TF.js backend 'tfjs-node' is not available: /);
    await expect(initBackend('tpu')).rejects.toThrow("Unknown TF.js backend 'tpu' (one of tfjs-node-gpu, tfjs-node, wasm, cpu)");
    expect(tf.getBackend()).toBe('wasm');
  });
});
