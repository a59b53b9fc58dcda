import * as tf from '@tensorflow/tfjs';

/**
 * Embedding layers train through two kernels that stock tfjs 4.22 gets wrong in Node:
 * - `UnsortedSegmentSum` (the gradient of a gather): on `cpu` it loops over every segment with
 *   whole-tensor ops (a 20,000-word vocabulary never finishes a batch); `wasm` lacks it.
 * - `GatherV2` on `wasm`: its C++ loop is generic over strides, ~60 ms for 16k rows of 64.
 * Both are plain loops over rows here, reading and writing the backend's own memory: for
 * `cpu` its `data` storage, for `wasm` views of its heap.
 */

type Values = Float32Array | Int32Array | Uint8Array;

interface CpuBackend {
  data: { get(dataId: object): { values?: Values } };
  makeTensorInfo(shape: number[], dtype: tf.DataType, values?: Values): tf.TensorInfo;
}

interface WasmBackend {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(info: tf.TensorInfo): Values;
  disposeData(dataId: object): boolean;
}

interface KernelArgs {
  inputs: Record<string, tf.TensorInfo>;
  backend: unknown;
  attrs?: Record<string, unknown>;
}

/** Adds row i of `x` (rows of `inner` values) to row `ids[i]` of `out`; ids outside [0, segments) are dropped, as in TensorFlow. */
export function segmentSumInto(x: Values, ids: Values, segments: number, inner: number, out: Values): void {
  out.fill(0);
  const n = ids.length;
  for (let i = 0; i < n; i++) {
    const s = ids[i];
    if (s < 0 || s >= segments) continue;
    const o = s * inner;
    const xi = i * inner;
    for (let j = 0; j < inner; j++) out[o + j] += x[xi + j];
  }
}

/** Copies row `ids[i]` of `x` to row i of `out`; throws on an id out of range, as the stock kernel does. */
export function gatherRowsInto(x: Values, ids: Values, rows: number, inner: number, out: Values): void {
  const n = ids.length;
  for (let i = 0; i < n; i++) {
    const r = ids[i];
    if (!(r >= 0 && r < rows)) throw new Error(`GatherV2: the index value ${r} is not in [0, ${rows - 1}]`);
    const xi = r * inner;
    const o = i * inner;
    for (let j = 0; j < inner; j++) out[o + j] = x[xi + j];
  }
}

function segmentShapes(x: tf.TensorInfo, segmentIds: tf.TensorInfo, numSegments: number) {
  const innerShape = x.shape.slice(segmentIds.shape.length);
  return { outShape: [numSegments, ...innerShape], inner: innerShape.reduce((a, b) => a * b, 1) };
}

function newValues(dtype: tf.DataType, size: number): Values {
  return dtype === 'int32' ? new Int32Array(size) : dtype === 'bool' ? new Uint8Array(size) : new Float32Array(size);
}

function cpuSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const numSegments = attrs!.numSegments as number;
  const cpu = backend as CpuBackend;
  const { outShape, inner } = segmentShapes(x, segmentIds, numSegments);
  const out = newValues(x.dtype, numSegments * inner);
  segmentSumInto(cpu.data.get(x.dataId).values!, cpu.data.get(segmentIds.dataId).values!, numSegments, inner, out);
  return cpu.makeTensorInfo(outShape, x.dtype, out);
}

function wasmSegmentSum({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, segmentIds } = inputs;
  const numSegments = attrs!.numSegments as number;
  const wasm = backend as WasmBackend;
  const { outShape, inner } = segmentShapes(x, segmentIds, numSegments);
  const out = wasm.makeOutput(outShape, x.dtype);
  // Views are taken after the allocation: growing the heap detaches older ones.
  segmentSumInto(wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(segmentIds), numSegments, inner, wasm.typedArrayFromHeap(out));
  return out;
}

/** Axis 0 without batch dims (what Embedding does) takes the fast path; anything else the stock kernel. */
function fastGatherApplies({ inputs, attrs }: KernelArgs): boolean {
  const axis = (attrs?.axis as number) ?? 0;
  const rank = inputs.x.shape.length;
  return (axis === 0 || axis === -rank) && !attrs?.batchDims && inputs.x.dtype !== 'string' && inputs.x.shape[0] > 0;
}

function gatherShapes(x: tf.TensorInfo, indices: tf.TensorInfo) {
  const innerShape = x.shape.slice(1);
  return { outShape: [...indices.shape, ...innerShape], inner: innerShape.reduce((a, b) => a * b, 1) };
}

function makeGather(backendName: 'cpu' | 'wasm', stock: tf.KernelConfig): tf.KernelConfig {
  const kernelFunc = (args: KernelArgs): tf.TensorInfo | tf.TensorInfo[] => {
    if (!fastGatherApplies(args)) return stock.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]);
    const { x, indices } = args.inputs;
    const { outShape, inner } = gatherShapes(x, indices);
    if (backendName === 'cpu') {
      const cpu = args.backend as CpuBackend;
      const out = newValues(
        x.dtype,
        outShape.reduce((a, b) => a * b, 1),
      );
      gatherRowsInto(cpu.data.get(x.dataId).values!, cpu.data.get(indices.dataId).values!, x.shape[0], inner, out);
      return cpu.makeTensorInfo(outShape, x.dtype, out);
    }
    const wasm = args.backend as WasmBackend;
    const out = wasm.makeOutput(outShape, x.dtype);
    try {
      gatherRowsInto(wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(indices), x.shape[0], inner, wasm.typedArrayFromHeap(out));
    } catch (err) {
      wasm.disposeData(out.dataId);
      throw err;
    }
    return out;
  };
  return { ...stock, kernelFunc: kernelFunc as unknown as tf.KernelFunc, [FAST]: true } as tf.KernelConfig;
}

const FAST = Symbol('aiaas fast kernel');
const isFast = (k: tf.KernelConfig | undefined) => Boolean(k && (k as unknown as Record<symbol, unknown>)[FAST]);

function replace(config: tf.KernelConfig): void {
  if (tf.getKernel(config.kernelName, config.backendName)) tf.unregisterKernel(config.kernelName, config.backendName);
  tf.registerKernel(config);
}

/** Registers the kernels for `cpu`, and for `wasm` once its package is loaded. Idempotent. */
export function registerFastKernels(): void {
  for (const backendName of ['cpu', 'wasm'] as const) {
    const stockGather = tf.getKernel('GatherV2', backendName);
    if (!stockGather) continue; // the wasm package is not loaded
    if (!isFast(tf.getKernel('UnsortedSegmentSum', backendName))) {
      replace({
        kernelName: 'UnsortedSegmentSum',
        backendName,
        kernelFunc: (backendName === 'cpu' ? cpuSegmentSum : wasmSegmentSum) as unknown as tf.KernelFunc,
        [FAST]: true,
      } as tf.KernelConfig);
    }
    if (!isFast(stockGather)) replace(makeGather(backendName, stockGather));
  }
}
