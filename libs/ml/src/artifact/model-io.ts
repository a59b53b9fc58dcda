import * as tf from '@tensorflow/tfjs';
import { MlError } from '../errors.js';
import type { ArtifactMetadata } from '../types.js';
import { encodeArtifact, sha256, type ArtifactJson, type DecodedArtifact, type WeightSpec } from './format.js';

/** The model and its preprocessing as one artifact (TF.js layers model.json, weights inlined). */
export async function serializeModel(
  model: tf.LayersModel,
  metadata: ArtifactMetadata,
): Promise<{ artifact: Buffer; sha256: string; json: ArtifactJson }> {
  let saved: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      saved = artifacts;
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    }),
  );
  const artifacts = saved! as tf.io.ModelArtifacts;
  const weightData = artifacts.weightData ? tf.io.CompositeArrayBuffer.join(artifacts.weightData) : new ArrayBuffer(0);
  const json: ArtifactJson = {
    format: 'layers-model',
    generatedBy: artifacts.generatedBy ?? `TensorFlow.js tfjs-layers v${tf.version_layers}`,
    convertedBy: null,
    modelTopology: artifacts.modelTopology as Record<string, unknown>,
    weightsManifest: [{ paths: [], weights: (artifacts.weightSpecs ?? []) as WeightSpec[] }],
    weightData: Buffer.from(weightData).toString('base64'),
    userDefinedMetadata: { aiaas: metadata },
  };
  const artifact = encodeArtifact(json);
  return { artifact, sha256: sha256(artifact), json };
}

/** Builds the model of a decoded artifact with its weights. */
export async function loadLayersModel(decoded: DecodedArtifact): Promise<tf.LayersModel> {
  try {
    return await tf.loadLayersModel(
      tf.io.fromMemory({ modelTopology: decoded.json.modelTopology, weightSpecs: decoded.weightSpecs, weightData: decoded.weightData }),
    );
  } catch (err) {
    throw new MlError('invalid_artifact', `TF.js cannot load the artifact's model: ${err instanceof Error ? err.message : String(err)}`);
  }
}
