import * as tf from '@tensorflow/tfjs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot, type FoundationModelSpec, type TextInputLimits } from './catalog.js';
import { InputError } from './errors.js';
import { Tokenizer, type Vocabulary } from './vendor/use-tokenizer.js';

/** Texts per encoder call: large enough to amortize the graph's overhead, small enough to pad little. */
const BATCH = 16;

export interface TokenizedText {
  ids: number[];
  /** Tokens the text had before truncation. */
  total: number;
}

/** Universal Sentence Encoder lite: a TF.js graph model over SentencePiece token ids. */
export class TextEncoder {
  private constructor(
    private readonly graph: tf.GraphModel,
    private readonly tokenizer: Tokenizer,
    readonly limits: TextInputLimits,
  ) {}

  static async load(spec: FoundationModelSpec): Promise<TextEncoder> {
    const root = packageRoot(spec.source.package);
    const modelJson = JSON.parse(await readFile(join(root, 'dist/model.json'), 'utf8')) as {
      modelTopology: unknown;
      weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
    };
    const shards = await Promise.all(modelJson.weightsManifest.flatMap((g) => g.paths).map((p) => readFile(join(root, 'dist', p))));
    const weightData = new Uint8Array(shards.reduce((a, s) => a + s.byteLength, 0));
    let offset = 0;
    for (const shard of shards) {
      weightData.set(shard, offset);
      offset += shard.byteLength;
    }
    const graph = await tf.loadGraphModel(
      tf.io.fromMemory({
        modelTopology: modelJson.modelTopology as tf.io.ModelArtifacts['modelTopology'],
        weightSpecs: modelJson.weightsManifest.flatMap((g) => g.weights),
        weightData: weightData.buffer,
      }),
    );
    const vocabulary = JSON.parse(await readFile(join(root, 'dist/vocab.json'), 'utf8')) as Vocabulary;
    return new TextEncoder(graph, new Tokenizer(vocabulary), spec.input as TextInputLimits);
  }

  /** Checks input `index` and returns its token ids, cut at `maxTokens`. */
  tokenize(text: unknown, index: number, maxTokens = this.limits.max_tokens): TokenizedText {
    if (typeof text !== 'string') throw new InputError(index, `input[${index}] is not a string`);
    if (text.trim() === '') throw new InputError(index, `input[${index}] is empty or only whitespace`);
    if (text.length > this.limits.max_chars)
      throw new InputError(index, `input[${index}] has ${text.length} characters; the limit is ${this.limits.max_chars}`);
    const ids = this.tokenizer.encode(text);
    return { ids: ids.length > maxTokens ? ids.slice(0, maxTokens) : ids, total: ids.length };
  }

  /** All token ids of a text of any length (documents are chunked by the caller), or null when it has none. */
  tokenizeAll(text: string): number[] | null {
    if (text.trim() === '') return null;
    return this.tokenizer.encode(text);
  }

  /** 512-d vectors of token-id lists, in order; every list must hold at least one id. */
  async encode(lists: number[][]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let start = 0; start < lists.length; start += BATCH) {
      const batch = lists.slice(start, start + BATCH);
      out.push(...(await this.encodeBatch(batch)));
    }
    return out;
  }

  private async encodeBatch(batch: number[][]): Promise<Float32Array[]> {
    const total = batch.reduce((a, ids) => a + ids.length, 0);
    const indices = new Int32Array(total * 2);
    const values = new Int32Array(total);
    let k = 0;
    batch.forEach((ids, row) => {
      // an empty row would be dropped by the graph (it sizes the batch from the largest row index): never send one
      if (ids.length === 0) throw new Error('an empty token list reached the text encoder');
      for (let j = 0; j < ids.length; j++, k++) {
        indices[2 * k] = row;
        indices[2 * k + 1] = j;
        values[k] = ids[j];
      }
    });
    const inputs = { indices: tf.tensor2d(indices, [total, 2], 'int32'), values: tf.tensor1d(values, 'int32') };
    try {
      const output = (await this.graph.executeAsync(inputs)) as tf.Tensor;
      try {
        const [rows, width] = output.shape;
        if (rows !== batch.length) throw new Error(`the text encoder returned ${rows} rows for ${batch.length} inputs`);
        const data = (await output.data()) as Float32Array;
        return Array.from({ length: rows }, (_, i) => data.slice(i * width!, (i + 1) * width!));
      } finally {
        output.dispose();
      }
    } finally {
      inputs.indices.dispose();
      inputs.values.dispose();
    }
  }

  dispose(): void {
    this.graph.dispose();
  }
}
