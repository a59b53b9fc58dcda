import { AuditRepository, Database, ModelRegistry, versionDataOf } from '@app/db';
import { initBackend, train, type TrainResult } from '@app/ml';
import { blobRows } from '../../libs/ml/src/synthetic.js';

/** A small classification problem (4 features, 3 classes) and one model trained on it in the test process. */
export const blobs = blobRows(150, { features: 4, classes: 3, seed: 11 });

let trained: Promise<TrainResult> | undefined;

export function trainedBlobModel(): Promise<TrainResult> {
  trained ??= initBackend('cpu').then(() =>
    train({ spec: { task: 'classification', label: 'label' }, rows: blobs, hyperparameters: { epochs: 3, seed: 1 } }),
  );
  return trained;
}

/**
 * Stores a version the way the job engine does (ModelRegistry.createFromTraining), for tests of
 * routes that need a trained model without running a training job.
 */
export async function storeVersion(tenantId: string, modelId: string, jobId: string): Promise<void> {
  const t = await trainedBlobModel();
  const db = new Database(process.env.DATABASE_URL!, 1);
  try {
    await new ModelRegistry(db, new AuditRepository(db)).createFromTraining(tenantId, modelId, jobId, versionDataOf(t));
  } finally {
    await db.close();
  }
}
