import * as tf from '@tensorflow/tfjs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { packageRoot, type FoundationModelSpec, type ImageInputLimits } from './catalog.js';
import { checkImage, decodeImage } from './image-decode.js';

const require = createRequire(import.meta.url);
const BATCH = 8;
const FEATURE_LAYER = 'flatten_1';

interface KerasJson {
  modelTopology: tf.io.ModelArtifacts['modelTopology'];
  weightsManifest: Array<{ paths: string[]; weights: tf.io.WeightsManifestEntry[] }>;
}

/**
 * MobileNetV2 as nsfwjs ships it: a layers model whose model.json and weights are JS modules (UMD, the weights as
 * base64), loaded from node_modules by `require` with no network. `features` ends at flatten_1 (1280-d); `classify`
 * runs the whole model (nsfwjs's 5 classes).
 */
export class ImageEncoder {
  private readonly bottoms = new Map<string, tf.LayersModel>();

  private constructor(
    private readonly full: tf.LayersModel,
    private readonly features: tf.LayersModel,
    readonly limits: ImageInputLimits,
  ) {}

  static async load(spec: FoundationModelSpec): Promise<ImageEncoder> {
    const root = packageRoot(spec.source.package);
    const [topologyFile, ...weightFiles] = spec.files;
    const json = require(join(root, topologyFile)) as KerasJson;
    const weights = weightFiles.map((f) => Buffer.from(require(join(root, f)) as string, 'base64'));
    const weightData = Buffer.concat(weights);
    const full = await tf.loadLayersModel(
      tf.io.fromMemory({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g) => g.weights),
        weightData: weightData.buffer.slice(weightData.byteOffset, weightData.byteOffset + weightData.byteLength) as ArrayBuffer,
      }),
    );
    const features = tf.model({ inputs: full.inputs, outputs: full.getLayer(FEATURE_LAYER).output as tf.SymbolicTensor });
    return new ImageEncoder(full, features, spec.input as ImageInputLimits);
  }

  /** Decodes, resizes to 224×224 (bilinear, corners aligned) and scales to [0, 1], as nsfwjs does; one tensor per batch. */
  preprocess(images: Uint8Array[], offset: number): tf.Tensor4D {
    const { width, height } = this.limits;
    return tf.tidy(() => {
      const resized = images.map((bytes, i) => {
        const rgb = decodeImage(bytes, offset + i, this.limits);
        const pixels = tf.tensor3d(rgb.data, [rgb.height, rgb.width, 3], 'int32').toFloat().div(255) as tf.Tensor3D;
        return rgb.width === width && rgb.height === height ? pixels : tf.image.resizeBilinear(pixels, [height, width], true);
      });
      return tf.stack(resized) as tf.Tensor4D;
    });
  }

  /** Checks every image's header first (a bad one is refused before any compute), then runs `model` in batches. */
  private async run(model: tf.LayersModel, images: Uint8Array[]): Promise<Float32Array[]> {
    images.forEach((bytes, i) => {
      checkImage(bytes, i, this.limits);
    });
    const out: Float32Array[] = [];
    for (let start = 0; start < images.length; start += BATCH) {
      const batch = images.slice(start, start + BATCH);
      const x = this.preprocess(batch, start);
      try {
        const y = model.predict(x) as tf.Tensor;
        const data = (await y.data()) as Float32Array;
        const width = y.shape[1]!;
        y.dispose();
        for (let i = 0; i < batch.length; i++) out.push(data.slice(i * width, (i + 1) * width));
      } finally {
        x.dispose();
      }
    }
    return out;
  }

  /** The backbone (up to and including the feature layer) in topological order, for transfer learning. */
  backboneLayers(): tf.layers.Layer[] {
    const layers = this.full.layers;
    return layers.slice(0, layers.findIndex((l) => l.name === FEATURE_LAYER) + 1);
  }

  /** The model from the image to layer `cut`'s output (shared weights, frozen; cached per cut). */
  bottom(cut: string): tf.LayersModel {
    let model = this.bottoms.get(cut);
    if (!model) {
      model = tf.model({ inputs: this.full.inputs, outputs: this.full.getLayer(cut).output as tf.SymbolicTensor });
      this.bottoms.set(cut, model);
    }
    return model;
  }

  /** The feature model (image → 1280-d at flatten_1), differentiable: saliency maps go through it. */
  get featureModel(): tf.LayersModel {
    return this.features;
  }

  embed(images: Uint8Array[]): Promise<Float32Array[]> {
    return this.run(this.features, images);
  }

  classify(images: Uint8Array[]): Promise<Float32Array[]> {
    return this.run(this.full, images);
  }

  dispose(): void {
    this.full.dispose();
  }
}
