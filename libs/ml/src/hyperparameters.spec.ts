import { describe, expect, it } from '@jest/globals';
import { thrown } from './testing.js';
import { HYPERPARAMETER_DEFAULTS, resolveHyperparameters } from './hyperparameters.js';

describe('hyperparameters', () => {
  it('fills in the defaults of the task, with a random seed that is recorded', () => {
    const tabular = resolveHyperparameters('classification', undefined);
    expect(tabular).toEqual({ ...HYPERPARAMETER_DEFAULTS.tabular, hidden_units: [128, 128], seed: expect.any(Number) });
    const text = resolveHyperparameters('text-classification', { seed: 9, sequence_length: 32 });
    expect(text).toMatchObject({ learning_rate: 0.01, max_vocabulary: 32_768, ngrams: 1, sequence_length: 32, hidden_units: [], seed: 9 });
    expect(text).not.toHaveProperty('embedding_dim');
    expect(resolveHyperparameters('text-classification', {}, { preset: false })).toMatchObject({ max_vocabulary: 20_000 });
    expect(resolveHyperparameters('regression', {}).seed).not.toBe(resolveHyperparameters('regression', {}).seed);
  });

  it('completes early stopping', () => {
    expect(resolveHyperparameters('regression', { early_stopping: { patience: 3 } }).early_stopping).toEqual({
      patience: 3,
      min_delta: 0,
      restore_best_weights: true,
    });
  });

  it('drops preset settings when the architecture is not a preset', () => {
    const custom = resolveHyperparameters('text-classification', { epochs: 2 }, { preset: false, textData: false });
    expect(custom).not.toHaveProperty('hidden_units');
    expect(custom).not.toHaveProperty('embedding_dim');
    expect(custom).not.toHaveProperty('max_vocabulary');
  });

  it('lists every problem at once', () => {
    const error = thrown(() =>
      resolveHyperparameters('classification', {
        epochs: 0,
        batch_size: 2.5,
        learning_rate: -1,
        optimizer: 'lbfgs' as never,
        validation_split: 1,
        early_stopping: { patience: 0, min_delta: -1 },
        seed: -3,
        embedding_dim: 8,
      }),
    );
    expect(error.code).toBe('invalid_hyperparameters');
    expect(error.details).toEqual([
      "unknown hyperparameter 'embedding_dim' for task classification",
      'optimizer must be one of adam, sgd, rmsprop, adagrad',
      'validation_split must be a number from 0 to 0.9',
      'seed must be an integer from 0 to 4294967295',
      'early_stopping.patience must be an integer from 1 to 1000',
      'early_stopping.min_delta must be a number from 0 to 1000000000',
      'epochs must be an integer from 1 to 1000',
      'batch_size must be an integer from 1 to 8192',
      'learning_rate must be a number from 1e-7 to 10',
    ]);
  });

  it("gives images the convolutional preset's defaults, augmentation off, and trainable_base_layers only on a base", () => {
    const hp = resolveHyperparameters('image-classification', { seed: 1 });
    expect(hp).toEqual({
      epochs: 8,
      batch_size: 32,
      learning_rate: 0.001,
      optimizer: 'adam',
      validation_split: 0.1,
      early_stopping: null,
      seed: 1,
      hidden_units: [128],
      augmentation: null,
    });
    expect(resolveHyperparameters('image-classification', { seed: 1, augmentation: { flip: true } }).augmentation).toEqual({
      flip: true,
      shift: 0,
    });
    expect(
      resolveHyperparameters('image-classification', { seed: 1, trainable_base_layers: 3 }, { baseModel: true }).trainable_base_layers,
    ).toBe(3);
    const error = thrown(() => resolveHyperparameters('image-classification', { augmentation: 'yes' as never, trainable_base_layers: 1 }));
    expect(error.details).toEqual([
      'trainable_base_layers applies to a head on a base model (base_model); a model from scratch trains every layer',
      'augmentation must be an object {flip?: boolean, shift?: number from 0 to 0.25}, or null for none',
    ]);
    expect(thrown(() => resolveHyperparameters('classification', { augmentation: { flip: true } })).details).toEqual([
      "unknown hyperparameter 'augmentation' for task classification",
    ]);
  });
});
