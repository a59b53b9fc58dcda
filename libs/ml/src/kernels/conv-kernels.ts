import * as tf from '@tensorflow/tfjs';

/**
 * Convolution gradients for `wasm` (tfjs 4.22), so that convolutional networks train on it and saliency maps flow
 * through MobileNetV2. It lacks `Conv2DBackpropFilter` and both depthwise gradients; its `Conv2DBackpropInput` and
 * `MaxPoolGrad` are naive loops (57 and 24 ms of a 208 ms step of the image preset, measured). Here: the two conv
 * gradients as an im2col / col2im in JS around the backend's own SIMD matmul (laid out so that the matmul's output is
 * small or its operands untransposed: the fast cases), max-pool and depthwise gradients as plain loops. Checked
 * against `cpu` in the spec.
 */

type Values = Float32Array | Int32Array | Uint8Array;

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

type ConvInfo = ReturnType<typeof tf.backend_util.computeConv2DInfo>;

function convInfo(xShape: number[], filterShape: number[], attrs: Record<string, unknown>, depthwise: boolean): ConvInfo {
  const dataFormat = (attrs.dataFormat as string | undefined) ?? 'NHWC';
  if (dataFormat !== 'NHWC')
    throw new Error(`${depthwise ? 'depthwise ' : ''}convolution gradients on wasm support NHWC only, not ${dataFormat}`);
  return tf.backend_util.computeConv2DInfo(
    xShape as [number, number, number, number],
    filterShape as [number, number, number, number],
    attrs.strides as [number, number] | number,
    (attrs.dilations as [number, number] | number | undefined) ?? 1,
    attrs.pad as 'valid' | 'same' | number,
    attrs.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
    depthwise,
  );
}

/**
 * The input patches each output position sees, zeros where padded: row (kh, kw, ci) × column (n, oh, ow) when
 * `transposed`, else row (n, oh, ow) × column (kh, kw, ci). `scatter` runs the same walk backwards (col2im): it adds
 * each patch value of `out` into `x`.
 */
export function im2col(x: Values, c: ConvInfo, out: Float32Array, transposed = false, scatter = false): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW } = c;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const K = KH * KW * C;
  const M = N * OH * OW;
  if (scatter) x.fill(0);
  else out.fill(0);
  let row = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, row++) {
        const base = transposed ? row : row * K;
        const step = transposed ? M : 1;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw * dw - left;
            if (iw < 0 || iw >= W) continue;
            const from = ((n * H + ih) * W + iw) * C;
            const to = base + (kh * KW + kw) * C * step;
            if (scatter) for (let ci = 0; ci < C; ci++) x[from + ci] += out[to + ci * step];
            else for (let ci = 0; ci < C; ci++) out[to + ci * step] = x[from + ci];
          }
        }
      }
    }
  }
}

function wasmConv2DBackpropFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const wasm = backend as WasmBackend;
  const filterShape = attrs!.filterShape as number[];
  const c = convInfo(x.shape, filterShape, { ...attrs, dilations: 1 }, false);
  const M = c.batchSize * c.outHeight * c.outWidth;
  const K = c.filterHeight * c.filterWidth * c.inChannels;
  const Co = c.outChannels;
  // dW [K, Co] = cols [K, M] · dy [M, Co]
  const cols = wasm.makeOutput([1, K, M], 'float32');
  const grads = wasm.makeOutput([1, M, Co], 'float32');
  let product: tf.TensorInfo | null = null;
  try {
    im2col(wasm.typedArrayFromHeap(x), c, wasm.typedArrayFromHeap(cols) as Float32Array, true);
    (wasm.typedArrayFromHeap(grads) as Float32Array).set(wasm.typedArrayFromHeap(dy));
    product = matMul(backend, cols, grads);
    const out = wasm.makeOutput(filterShape, 'float32');
    (wasm.typedArrayFromHeap(out) as Float32Array).set(wasm.typedArrayFromHeap(product));
    return out;
  } finally {
    wasm.disposeData(cols.dataId);
    wasm.disposeData(grads.dataId);
    if (product) wasm.disposeData(product.dataId);
  }
}

function matMul(backend: unknown, a: tf.TensorInfo, b: tf.TensorInfo): tf.TensorInfo {
  const kernel = tf.getKernel('BatchMatMul', 'wasm')!;
  // untransposed: the stock kernel's fast case (also behind our BatchMatMul)
  return kernel.kernelFunc({
    inputs: { a, b },
    backend: backend as tf.KernelBackend,
    attrs: { transposeA: false, transposeB: false },
  }) as tf.TensorInfo;
}

function wasmConv2DBackpropInput({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs;
  const wasm = backend as WasmBackend;
  const inputShape = attrs!.inputShape as number[];
  const c = convInfo(inputShape, filter.shape, { ...attrs, dilations: 1 }, false);
  const M = c.batchSize * c.outHeight * c.outWidth;
  const K = c.filterHeight * c.filterWidth * c.inChannels;
  const Co = c.outChannels;
  // dcols [M, K] = dy [M, Co] · Wᵀ [Co, K], then each patch value added back to the pixel it came from
  const grads = wasm.makeOutput([1, M, Co], 'float32');
  const weights = wasm.makeOutput([1, Co, K], 'float32');
  let product: tf.TensorInfo | null = null;
  try {
    (wasm.typedArrayFromHeap(grads) as Float32Array).set(wasm.typedArrayFromHeap(dy));
    const w = wasm.typedArrayFromHeap(filter);
    const wt = wasm.typedArrayFromHeap(weights);
    for (let k = 0; k < K; k++) for (let o = 0; o < Co; o++) wt[o * K + k] = w[k * Co + o];
    product = matMul(backend, grads, weights);
    const out = wasm.makeOutput(inputShape, 'float32');
    im2col(wasm.typedArrayFromHeap(out), c, wasm.typedArrayFromHeap(product) as Float32Array, false, true);
    return out;
  } finally {
    wasm.disposeData(grads.dataId);
    wasm.disposeData(weights.dataId);
    if (product) wasm.disposeData(product.dataId);
  }
}

/** dx: each window's gradient goes to the first of its largest inputs (as TensorFlow picks it). */
export function maxPoolGrad(dy: Values, x: Values, c: ConvInfo, out: Values): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = c;
  const {
    strideHeight: sh,
    strideWidth: sw,
    effectiveFilterHeight: KH,
    effectiveFilterWidth: KW,
    dilationHeight: dh,
    dilationWidth: dw,
  } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  out.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const g = ((n * OH + oh) * OW + ow) * C;
        for (let ch = 0; ch < C; ch++) {
          let best = -Infinity;
          let at = -1;
          for (let kh = 0; kh < KH; kh += dh) {
            const ih = oh * sh + kh - top;
            if (ih < 0 || ih >= H) continue;
            for (let kw = 0; kw < KW; kw += dw) {
              const iw = ow * sw + kw - left;
              if (iw < 0 || iw >= W) continue;
              const i = ((n * H + ih) * W + iw) * C + ch;
              if (x[i] > best) {
                best = x[i];
                at = i;
              }
            }
          }
          if (at >= 0) out[at] += dy[g + ch];
        }
      }
    }
  }
}

function wasmMaxPoolGrad({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, input } = inputs;
  const wasm = backend as WasmBackend;
  const a = attrs!;
  const c = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    a.filterSize as [number, number] | number,
    a.strides as [number, number] | number,
    1,
    a.pad as 'valid' | 'same' | number,
    a.dimRoundingMode as 'floor' | 'round' | 'ceil' | undefined,
  );
  const out = wasm.makeOutput(input.shape, 'float32');
  maxPoolGrad(wasm.typedArrayFromHeap(dy), wasm.typedArrayFromHeap(input), c, wasm.typedArrayFromHeap(out));
  return out;
}

/** dW[kh, kw, c, m] = Σ x[n, ih, iw, c] · dy[n, oh, ow, c·M + m] over the positions the tap sees. */
export function depthwiseFilterGrad(x: Values, dy: Values, c: ConvInfo, out: Values): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW } = c;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = c;
  const Mult = c.outChannels / C;
  const CO = c.outChannels;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  out.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const g = ((n * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw * dw - left;
            if (iw < 0 || iw >= W) continue;
            const xi = ((n * H + ih) * W + iw) * C;
            const wi = (kh * KW + kw) * CO;
            for (let ch = 0; ch < C; ch++) {
              const xv = x[xi + ch];
              for (let m = 0; m < Mult; m++) out[wi + ch * Mult + m] += xv * dy[g + ch * Mult + m];
            }
          }
        }
      }
    }
  }
}

/** dx[n, ih, iw, c] = Σ W[kh, kw, c, m] · dy[n, oh, ow, c·M + m] over the outputs the input pixel reaches. */
export function depthwiseInputGrad(dy: Values, filter: Values, c: ConvInfo, out: Values): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW } = c;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = c;
  const Mult = c.outChannels / C;
  const CO = c.outChannels;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  out.fill(0);
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const g = ((n * OH + oh) * OW + ow) * CO;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw * dw - left;
            if (iw < 0 || iw >= W) continue;
            const xi = ((n * H + ih) * W + iw) * C;
            const wi = (kh * KW + kw) * CO;
            for (let ch = 0; ch < C; ch++) {
              let sum = 0;
              for (let m = 0; m < Mult; m++) sum += filter[wi + ch * Mult + m] * dy[g + ch * Mult + m];
              out[xi + ch] += sum;
            }
          }
        }
      }
    }
  }
}

function wasmDepthwiseFilter({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { x, dy } = inputs;
  const wasm = backend as WasmBackend;
  const filterShape = attrs!.filterShape as number[];
  const c = convInfo(x.shape, filterShape, attrs!, true);
  const out = wasm.makeOutput(filterShape, 'float32');
  depthwiseFilterGrad(wasm.typedArrayFromHeap(x), wasm.typedArrayFromHeap(dy), c, wasm.typedArrayFromHeap(out));
  return out;
}

function wasmDepthwiseInput({ inputs, backend, attrs }: KernelArgs): tf.TensorInfo {
  const { dy, filter } = inputs;
  const wasm = backend as WasmBackend;
  const inputShape = attrs!.inputShape as number[];
  const c = convInfo(inputShape, filter.shape, attrs!, true);
  const out = wasm.makeOutput(inputShape, 'float32');
  depthwiseInputGrad(wasm.typedArrayFromHeap(dy), wasm.typedArrayFromHeap(filter), c, wasm.typedArrayFromHeap(out));
  return out;
}

/**
 * The stock wasm matmul is 5–12× slower with a transposed operand (a dense layer's two gradients: 9 and 8 ms against
 * 1.7 and 0.6 ms for a 32×3136 · 3136×128 step, measured): the operand is transposed first (0.13 ms), then multiplied.
 */
function makeMatMul(stock: tf.KernelConfig): (args: KernelArgs) => tf.TensorInfo {
  return (args) => {
    const { a, b } = args.inputs;
    const attrs = args.attrs ?? {};
    if (!attrs.transposeA && !attrs.transposeB) return stock.kernelFunc(args as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    const wasm = args.backend as WasmBackend;
    const transpose = tf.getKernel('Transpose', 'wasm')!;
    const swapLast = (x: tf.TensorInfo) => {
      const perm = x.shape.map((_, i) => i);
      [perm[perm.length - 2], perm[perm.length - 1]] = [perm[perm.length - 1], perm[perm.length - 2]];
      return transpose.kernelFunc({ inputs: { x }, backend: args.backend as tf.KernelBackend, attrs: { perm } }) as tf.TensorInfo;
    };
    const ta = attrs.transposeA ? swapLast(a) : a;
    const tb = attrs.transposeB ? swapLast(b) : b;
    try {
      return stock.kernelFunc({
        ...args,
        inputs: { ...args.inputs, a: ta, b: tb },
        attrs: { ...attrs, transposeA: false, transposeB: false },
      } as unknown as Parameters<tf.KernelFunc>[0]) as tf.TensorInfo;
    } finally {
      if (ta !== a) wasm.disposeData(ta.dataId);
      if (tb !== b) wasm.disposeData(tb.dataId);
    }
  };
}

const KERNELS: Array<[string, (args: KernelArgs) => tf.TensorInfo]> = [
  ['Conv2DBackpropFilter', wasmConv2DBackpropFilter],
  ['Conv2DBackpropInput', wasmConv2DBackpropInput],
  ['MaxPoolGrad', wasmMaxPoolGrad],
  ['DepthwiseConv2dNativeBackpropFilter', wasmDepthwiseFilter],
  ['DepthwiseConv2dNativeBackpropInput', wasmDepthwiseInput],
];

const OURS = Symbol('aiaas conv kernel');

/** Registers these kernels for `wasm` once its package is loaded (replacing the stock ones). Idempotent. */
export function registerConvGradientKernels(): void {
  if (!tf.getKernel('Conv2D', 'wasm')) return;
  const matMul = tf.getKernel('BatchMatMul', 'wasm') as unknown as Record<symbol, unknown> & tf.KernelConfig;
  const kernels = matMul[OURS]
    ? KERNELS
    : [...KERNELS, ['BatchMatMul', makeMatMul(matMul)] as [string, (args: KernelArgs) => tf.TensorInfo]];
  for (const [kernelName, kernelFunc] of kernels) {
    const current = tf.getKernel(kernelName, 'wasm') as unknown as Record<symbol, unknown> | undefined;
    if (current?.[OURS]) continue;
    if (current) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({
      kernelName,
      backendName: 'wasm',
      kernelFunc: kernelFunc as unknown as tf.KernelFunc,
      [OURS]: true,
    } as tf.KernelConfig);
  }
}
