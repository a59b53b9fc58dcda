import * as tf from '@tensorflow/tfjs';

/**
 * The convolution gradients that `wasm` (tfjs 4.22) lacks, so that convolutional networks train on it and saliency
 * maps flow through MobileNetV2: `Conv2DBackpropFilter` (an im2col in JS, then the backend's own SIMD matmul) and the
 * two depthwise gradients (plain loops: a depthwise layer has few multiply-adds). Checked against `cpu` in the spec.
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
  if (dataFormat !== 'NHWC') throw new Error(`${depthwise ? 'depthwise ' : ''}convolution gradients on wasm support NHWC only, not ${dataFormat}`);
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

/** Rows (n, oh, ow) × columns (kh, kw, ci) of the input patches each output position sees; zeros where padded. */
export function im2col(x: Values, c: ConvInfo, out: Float32Array): void {
  const { batchSize: N, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW, filterHeight: KH, filterWidth: KW } = c;
  const { strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = c;
  const top = c.padInfo.top;
  const left = c.padInfo.left;
  const K = KH * KW * C;
  out.fill(0);
  let row = 0;
  for (let n = 0; n < N; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++, row++) {
        const base = row * K;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - top;
          if (ih < 0 || ih >= H) continue;
          for (let kw = 0; kw < KW; kw++) {
            const iw = ow * sw + kw * dw - left;
            if (iw < 0 || iw >= W) continue;
            const from = ((n * H + ih) * W + iw) * C;
            const to = base + (kh * KW + kw) * C;
            for (let ci = 0; ci < C; ci++) out[to + ci] = x[from + ci];
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
  const cols = wasm.makeOutput([1, M, K], 'float32');
  const grads = wasm.makeOutput([1, M, Co], 'float32');
  let product: tf.TensorInfo | null = null;
  try {
    im2col(wasm.typedArrayFromHeap(x), c, wasm.typedArrayFromHeap(cols) as Float32Array);
    (wasm.typedArrayFromHeap(grads) as Float32Array).set(wasm.typedArrayFromHeap(dy));
    const matMul = tf.getKernel('BatchMatMul', 'wasm')!;
    product = matMul.kernelFunc({ inputs: { a: cols, b: grads }, backend: backend as tf.KernelBackend, attrs: { transposeA: true, transposeB: false } }) as tf.TensorInfo;
    const out = wasm.makeOutput(filterShape, 'float32');
    (wasm.typedArrayFromHeap(out) as Float32Array).set(wasm.typedArrayFromHeap(product));
    return out;
  } finally {
    wasm.disposeData(cols.dataId);
    wasm.disposeData(grads.dataId);
    if (product) wasm.disposeData(product.dataId);
  }
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

const KERNELS: Array<[string, (args: KernelArgs) => tf.TensorInfo]> = [
  ['Conv2DBackpropFilter', wasmConv2DBackpropFilter],
  ['DepthwiseConv2dNativeBackpropFilter', wasmDepthwiseFilter],
  ['DepthwiseConv2dNativeBackpropInput', wasmDepthwiseInput],
];

/** Registers the missing gradients for `wasm` once its package is loaded; kernels the backend has are left alone. Idempotent. */
export function registerConvGradientKernels(): void {
  if (!tf.getKernel('Conv2D', 'wasm')) return;
  for (const [kernelName, kernelFunc] of KERNELS) {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
}
