import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { MlError } from './errors.js';
import { registerConvGradientKernels } from './kernels/conv-kernels.js';
import { registerFastKernels } from './kernels/segment-kernels.js';
import { BACKEND_NAMES, type BackendInfo, type BackendName } from './types.js';

const require = createRequire(import.meta.url);

/** The TF.js engine's name for each backend we pick from. */
const ENGINE_NAME: Record<BackendName, string> = { 'tfjs-node-gpu': 'tensorflow', 'tfjs-node': 'tensorflow', wasm: 'wasm', cpu: 'cpu' };
const ALIASES: Record<string, BackendName> = {
  'node-gpu': 'tfjs-node-gpu',
  gpu: 'tfjs-node-gpu',
  node: 'tfjs-node',
  tensorflow: 'tfjs-node',
};

let current: BackendInfo | null = null;
let pending: Promise<BackendInfo> | null = null;

export function parseBackendName(forced: string): BackendName {
  const name = forced.trim().toLowerCase();
  if ((BACKEND_NAMES as readonly string[]).includes(name)) return name as BackendName;
  if (ALIASES[name]) return ALIASES[name];
  throw new MlError('backend_unavailable', `Unknown TF.js backend '${forced}' (one of ${BACKEND_NAMES.join(', ')})`);
}

/**
 * Picks the TF.js backend: `tfjs-node-gpu` if installed and it loads, else `tfjs-node`, else
 * `wasm`, else `cpu`; `forced` (the caller's TF_BACKEND) takes that one or fails. Call once
 * per process before training; calling again with another name switches backends.
 */
export async function initBackend(forced?: string | null): Promise<BackendInfo> {
  while (pending) await pending.catch(() => undefined);
  const wanted = forced ? parseBackendName(forced) : null;
  if (current && (wanted === null || wanted === current.name) && tf.getBackend() === ENGINE_NAME[current.name]) return current;
  pending = select(wanted);
  try {
    current = await pending;
    return current;
  } finally {
    pending = null;
  }
}

/** The backend in use, initializing the default one on first use. */
export async function ensureBackend(): Promise<BackendInfo> {
  if (current && !pending && tf.getBackend() === ENGINE_NAME[current.name]) return current;
  return initBackend(current?.name ?? null);
}

async function select(wanted: BackendName | null): Promise<BackendInfo> {
  // TF.js greets Node users and warns on kernel re-registration through console.warn; PROD mode silences only those logs.
  tf.enableProdMode();
  const order = wanted ? [wanted] : BACKEND_NAMES;
  const skipped: BackendInfo['skipped'] = [];
  for (const name of order) {
    try {
      const gpu = await activate(name);
      registerFastKernels();
      registerConvGradientKernels();
      return { name, gpu, skipped };
    } catch (err) {
      const reason = err instanceof Error ? err.message.split('\n')[0] : String(err);
      if (wanted) throw new MlError('backend_unavailable', `The TF.js backend '${name}' is not available: ${reason}`);
      skipped.push({ name, reason });
    }
  }
  throw new MlError('backend_unavailable', `No TF.js backend loads: ${skipped.map((s) => `${s.name}: ${s.reason}`).join('; ')}`);
}

/** Loads and sets one backend; true when it computes on a GPU. */
async function activate(name: BackendName): Promise<boolean> {
  if (name === 'tfjs-node-gpu' || name === 'tfjs-node') {
    // Optional peers: a variable specifier keeps TypeScript and bundlers from requiring them.
    const specifier = name === 'tfjs-node-gpu' ? '@tensorflow/tfjs-node-gpu' : '@tensorflow/tfjs-node';
    await import(specifier);
    if (!tf.findBackendFactory('tensorflow'))
      throw new Error(`${specifier} loaded but registered with another copy of @tensorflow/tfjs-core (versions differ)`);
    await setBackend('tensorflow');
    const backend = tf.backend() as unknown as { isUsingGpuDevice?: boolean };
    return name === 'tfjs-node-gpu' && backend.isUsingGpuDevice !== false;
  }
  if (name === 'wasm') {
    const wasm = await import('@tensorflow/tfjs-backend-wasm');
    // In Node the .wasm files load from disk: the directory of the package's entry (tfjs turns threads off in Node).
    wasm.setWasmPaths(join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm')), '/'));
    await setBackend('wasm');
    return false;
  }
  await setBackend('cpu');
  return false;
}

async function setBackend(engineName: string): Promise<void> {
  const ok = await tf.setBackend(engineName);
  if (!ok || tf.getBackend() !== engineName) throw new Error(`tf.setBackend('${engineName}') failed`);
  await tf.ready();
}
