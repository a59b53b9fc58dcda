/**
 * The compute child process: the only place TF.js runs. It initializes its backend once (the
 * forced name is argv[2]), tells the parent which one it got, then runs one operation at a time
 * for as long as it lives. `abort` reaches libs/ml's AbortSignal, which the training loop checks
 * before every batch; the parent kills a child that does not stop in time. An inference child
 * (argv[3]: its model cache budget in bytes) keeps recently used versions loaded for `infer`, and
 * loads imported models once for `check` before they become versions.
 */
import {
  baseFeatures,
  checkLoads,
  type FoundationHandle,
  evaluate,
  initBackend,
  isInputError,
  isMlError,
  loadFoundation,
  loadModel,
  type LoadedModel,
  predict,
  type Row,
  train,
} from '@app/ml';
import { performance } from 'node:perf_hooks';
import { ModelCache } from '../inference/model-cache.js';
import type { ComputeOps, FromChild, SerializedError, ToChild } from './protocol.js';

const send = (msg: FromChild) => process.send!(msg);

function serialize(err: unknown): SerializedError {
  if (isMlError(err)) return { name: 'MlError', message: err.message, code: err.code, details: err.details };
  if (isInputError(err)) return { name: 'InputError', message: err.message, index: err.index };
  const e = err instanceof Error ? err : new Error(String(err));
  return { name: e.name, message: e.message };
}

const controllers = new Map<number, AbortController>();
const models = new ModelCache<LoadedModel | { bytes: number; dispose(): void }>(Number(process.argv[3] ?? 0) || 0);

/** A foundation model runs from libs/ml's per-process handle, loaded once and shared with the heads of transfer-learned versions. */
/**
 * The base's bytes take their place in the budget (so that tenant heads are evicted for it), but
 * the base itself stays loaded: heads kept in the cache hold it, and the catalog has a few bases only.
 */
function holdFoundation(handle: FoundationHandle): void {
  const key = `foundation:${handle.spec.id}`;
  if (!models.get(key)) models.set(key, { bytes: handle.bytes, dispose: () => undefined });
}

async function foundation(args: ComputeOps['foundation']['args']): Promise<ComputeOps['foundation']['result']> {
  const t0 = performance.now();
  const handle = await loadFoundation(args.model);
  holdFoundation(handle);
  if (args.op === 'classify') {
    if (!handle.classify) throw new Error(`foundation model ${args.model} does not classify`);
    const { probabilities } = await handle.classify(args.inputs as Uint8Array[]);
    return { probabilities, seconds: (performance.now() - t0) / 1000 };
  }
  const { vectors, tokens, truncated } = await handle.embed(args.inputs);
  return { vectors, tokens, truncated, seconds: (performance.now() - t0) / 1000 };
}

/**
 * `use` with a loaded version: from the model cache, else loaded from the call's artifact; `miss`
 * when it is not loaded and no artifact came with the call.
 */
async function withVersion<R>(
  args: { versionId: string; artifact?: Uint8Array },
  use: (model: LoadedModel) => Promise<R>,
): Promise<{ miss: true } | (R & { miss: false; seconds: number })> {
  const t0 = performance.now();
  let model = models.get(args.versionId) as LoadedModel | undefined;
  let keep = true;
  if (!model) {
    if (!args.artifact) return { miss: true };
    model = await loadModel(args.artifact);
    keep = models.set(args.versionId, model);
    // A transfer-learned head runs on a base loaded once for every head (and for embeddings): count it once.
    if (model.base) holdFoundation(model.base);
  }
  try {
    const out = await use(model);
    return { miss: false, ...out, seconds: (performance.now() - t0) / 1000 };
  } finally {
    // Bigger than the whole cache: used for this call only.
    if (!keep) model.dispose();
  }
}

/** A prediction with a loaded version. */
function infer(args: ComputeOps['infer']['args']): Promise<ComputeOps['infer']['result']> {
  return withVersion(args, (model) => model.predict(args.inputs, { explain: args.explain, baseFeatures: args.baseFeatures }));
}

/** A batch prediction's chunk: its NDJSON lines parsed here, scored with a loaded version. */
function score(args: ComputeOps['score']['args']): Promise<ComputeOps['score']['result']> {
  return withVersion(args, (model) => model.scores(args.lines.split('\n').map((line) => JSON.parse(line) as Row)));
}

// biome-ignore lint/suspicious/noExplicitAny: the arguments of one op, as ComputeOps types them on the sending side (one message type for all ops)
async function run(id: number, op: keyof ComputeOps, args: any): Promise<unknown> {
  const controller = new AbortController();
  controllers.set(id, controller);
  try {
    switch (op) {
      case 'train': {
        const { history: _history, ...result } = await train({
          spec: args.spec,
          rows: args.rows,
          hyperparameters: args.hyperparameters,
          architecture: args.architecture ?? undefined,
          base: args.base ? Buffer.from(args.base.buffer, args.base.byteOffset, args.base.byteLength) : undefined,
          baseModel: args.baseModel,
          maxParameters: args.maxParameters,
          signal: controller.signal,
          onEpoch: (progress) => send({ type: 'epoch', id, progress }),
        });
        return result;
      }
      case 'evaluate':
        return await evaluate(args.artifact, args.rows, args.baseFeatures);
      case 'predict':
        return await predict(args.artifact, args.inputs, { explain: args.explain });
      case 'infer':
        return await infer(args);
      case 'score':
        return await score(args);
      case 'foundation':
        return await foundation(args);
      case 'features':
        return { features: await baseFeatures(await loadFoundation(args.model), args.inputs) };
      case 'check': {
        const t0 = performance.now();
        await checkLoads(args.artifact);
        return { seconds: (performance.now() - t0) / 1000 };
      }
      default:
        throw new Error(`unknown operation ${String(op)}`);
    }
  } finally {
    controllers.delete(id);
  }
}

process.on('message', (msg: ToChild) => {
  if (msg.type === 'abort') {
    controllers.get(msg.id)?.abort();
    return;
  }
  if (msg.type === 'run') {
    run(msg.id, msg.op, msg.args).then(
      (result) => send({ type: 'done', id: msg.id, result }),
      (err: unknown) => send({ type: 'error', id: msg.id, error: serialize(err) }),
    );
  }
});
// The parent went away: nothing left to compute for.
process.on('disconnect', () => process.exit(0));

try {
  const backend = await initBackend(process.argv[2] || null);
  send({ type: 'ready', backend });
} catch (err) {
  send({ type: 'init_error', error: serialize(err) });
  process.exitCode = 1;
  process.disconnect?.();
}
