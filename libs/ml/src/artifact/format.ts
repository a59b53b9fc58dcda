import { createHash } from 'node:crypto';
import { MlError } from '../errors.js';
import { TASKS, type ArtifactMetadata, type InputSchema } from '../types.js';

/** A weight as a TF.js weights manifest lists it. */
export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
  quantization?: { dtype: 'uint8' | 'uint16' | 'float16'; scale?: number; min?: number };
}

/**
 * A version's artifact: a TF.js layers `model.json` with the weights inlined (base64) and the
 * preprocessing in `userDefinedMetadata.aiaas`. Stored and downloaded as these JSON bytes.
 */
export interface ArtifactJson {
  format: 'layers-model';
  generatedBy: string;
  convertedBy: string | null;
  modelTopology: Record<string, unknown>;
  weightsManifest: Array<{ paths: string[]; weights: WeightSpec[] }>;
  weightData: string;
  userDefinedMetadata: { aiaas: ArtifactMetadata };
}

export interface DecodedArtifact {
  json: ArtifactJson;
  metadata: ArtifactMetadata;
  weightSpecs: WeightSpec[];
  /** The concatenated weights, as one ArrayBuffer of exactly their size. */
  weightData: ArrayBuffer;
  parameters: number;
}

export function sha256(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function encodeArtifact(json: ArtifactJson): Buffer {
  return Buffer.from(JSON.stringify(json), 'utf8');
}

const BYTES: Record<string, number> = { float32: 4, int32: 4, bool: 1, uint8: 1, uint16: 2, float16: 2 };

export function weightBytes(spec: WeightSpec): number {
  return elementCount(spec.shape) * BYTES[spec.quantization?.dtype ?? spec.dtype];
}

export function elementCount(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Problems with a weights manifest's specs, one line each. */
export function checkWeightSpecs(specs: unknown): string[] {
  if (!Array.isArray(specs)) return ['weightsManifest[].weights must be arrays of weight specs'];
  const problems: string[] = [];
  const names = new Set<string>();
  specs.forEach((s, i) => {
    const where = `weight ${i}${s && typeof s.name === 'string' ? ` '${s.name}'` : ''}`;
    if (!s || typeof s !== 'object') {
      problems.push(`${where} is not an object`);
      return;
    }
    if (typeof s.name !== 'string' || s.name === '') problems.push(`${where} has no name`);
    else if (names.has(s.name)) problems.push(`${where} is listed twice`);
    else names.add(s.name);
    if (!Array.isArray(s.shape) || !s.shape.every((d: unknown) => Number.isInteger(d) && (d as number) >= 0))
      problems.push(`${where} has no valid shape`);
    if (!['float32', 'int32', 'bool'].includes(s.dtype))
      problems.push(`${where} has dtype ${JSON.stringify(s.dtype)} (float32, int32 or bool expected)`);
    if (s.quantization !== undefined && (!s.quantization || !['uint8', 'uint16', 'float16'].includes(s.quantization.dtype))) {
      problems.push(`${where} has an unsupported quantization`);
    }
  });
  return problems;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export function decodeBase64(data: string): Uint8Array | null {
  if (data.length % 4 !== 0 || !BASE64.test(data)) return null;
  return new Uint8Array(Buffer.from(data, 'base64'));
}

/** Parses and checks an artifact of this library (bytes from the store, not an upload). */
export function decodeArtifact(artifact: Uint8Array | string): DecodedArtifact {
  let json: ArtifactJson;
  try {
    json = JSON.parse(
      typeof artifact === 'string' ? artifact : Buffer.from(artifact.buffer, artifact.byteOffset, artifact.byteLength).toString('utf8'),
    );
  } catch {
    throw new MlError('invalid_artifact', 'The artifact is not JSON');
  }
  const meta = json?.userDefinedMetadata?.aiaas;
  if (
    json?.format !== 'layers-model' ||
    !json.modelTopology ||
    !Array.isArray(json.weightsManifest) ||
    typeof json.weightData !== 'string'
  ) {
    throw new MlError('invalid_artifact', 'The artifact is not a TF.js layers model.json with inlined weights');
  }
  if (meta?.version !== 1 || !TASKS.includes(meta.task) || !meta.preprocessing || !meta.input_schema) {
    throw new MlError('invalid_artifact', 'The artifact carries no aiaas metadata (version 1)');
  }
  const weightSpecs = json.weightsManifest.flatMap((g) => g.weights);
  const problems = checkWeightSpecs(weightSpecs);
  if (problems.length > 0) throw MlError.list('invalid_artifact', 'The artifact has invalid weight specs', problems);
  const bytes = decodeBase64(json.weightData);
  const expected = weightSpecs.reduce((a, s) => a + weightBytes(s), 0);
  if (!bytes || bytes.byteLength !== expected) {
    throw new MlError('invalid_artifact', `The artifact's weightData holds ${bytes?.byteLength ?? 'no'} bytes; its specs need ${expected}`);
  }
  const weightData = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  return { json, metadata: meta, weightSpecs, weightData, parameters: weightSpecs.reduce((a, s) => a + elementCount(s.shape), 0) };
}

export interface ArtifactSummary {
  /** Everything the artifact says about its inputs, for `checkInputs`. */
  metadata: ArtifactMetadata;
  task: ArtifactMetadata['task'];
  input_schema: InputSchema;
  labels: string[] | null;
  parameters: number;
  architecture: Record<string, unknown>;
  bytes: number;
  sha256: string;
}

/** What a version row needs to know about an artifact, without TF.js (the API uses it). */
export function readArtifact(artifact: Uint8Array): ArtifactSummary {
  const decoded = decodeArtifact(artifact);
  return {
    metadata: decoded.metadata,
    task: decoded.metadata.task,
    input_schema: decoded.metadata.input_schema,
    labels: decoded.metadata.labels,
    parameters: decoded.parameters,
    architecture: decoded.json.modelTopology,
    bytes: artifact.byteLength,
    sha256: sha256(artifact),
  };
}
