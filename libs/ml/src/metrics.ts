import type { ClassificationMetrics, ClassMetrics, RegressionMetrics } from './types.js';

const EPSILON = 1e-7; // TF.js clips probabilities the same way in its cross-entropy

/** Metrics from class probabilities (`n × labels.length`, row-major) and true class indices. */
export function classificationMetrics(probabilities: Float32Array, truth: ArrayLike<number>, labels: string[]): ClassificationMetrics {
  const k = labels.length;
  const n = truth.length;
  const matrix = labels.map(() => new Array<number>(k).fill(0));
  let lossSum = 0;
  let correct = 0;
  for (let i = 0; i < n; i++) {
    const t = truth[i];
    const predicted = argMax(probabilities, i * k, k);
    matrix[t][predicted]++;
    if (predicted === t) correct++;
    lossSum -= Math.log(Math.min(1 - EPSILON, Math.max(EPSILON, probabilities[i * k + t])));
  }
  const perClass: Record<string, ClassMetrics> = {};
  let f1Sum = 0;
  labels.forEach((label, c) => {
    const tp = matrix[c][c];
    const support = matrix[c].reduce((a, b) => a + b, 0);
    const predictedCount = matrix.reduce((a, row) => a + row[c], 0);
    // No prediction or no example of a class scores 0, as scikit-learn's zero_division=0.
    const precision = predictedCount > 0 ? tp / predictedCount : 0;
    const recall = support > 0 ? tp / support : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    perClass[label] = { precision, recall, f1, support };
    f1Sum += f1;
  });
  return {
    accuracy: n > 0 ? correct / n : 0,
    loss: n > 0 ? lossSum / n : 0,
    macro_f1: k > 0 ? f1Sum / k : 0,
    per_class: perClass,
    confusion_matrix: { labels: [...labels], matrix },
    samples: n,
  };
}

export function regressionMetrics(predicted: ArrayLike<number>, truth: ArrayLike<number>): RegressionMetrics {
  const n = truth.length;
  let se = 0;
  let ae = 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += truth[i];
  mean = n > 0 ? mean / n : 0;
  let ssTot = 0;
  for (let i = 0; i < n; i++) {
    const d = predicted[i] - truth[i];
    se += d * d;
    ae += Math.abs(d);
    ssTot += (truth[i] - mean) ** 2;
  }
  const mse = n > 0 ? se / n : 0;
  // A constant target: R² is 1 for a perfect fit and 0 otherwise, rather than undefined.
  const r2 = ssTot > 0 ? 1 - se / ssTot : se === 0 ? 1 : 0;
  return { mse, rmse: Math.sqrt(mse), mae: n > 0 ? ae / n : 0, r2, loss: mse, samples: n };
}

export function argMax(values: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let j = 1; j < length; j++) if (values[offset + j] > values[offset + best]) best = j;
  return best;
}
