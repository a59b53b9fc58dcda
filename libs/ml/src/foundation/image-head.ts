import type { BackendName, TrainOptions, TrainResult } from '../types.js';
import { MlError } from '../errors.js';

export async function trainImageHead(_opts: TrainOptions, _backend: BackendName, _started: number): Promise<TrainResult> {
  throw new MlError('invalid_data', 'not yet');
}
