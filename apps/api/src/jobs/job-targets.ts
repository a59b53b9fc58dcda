import { APP_CONFIG, type AppConfig } from '@app/config';
import { isDatabaseUnavailable, type JobTargets, ModelRegistry, type TargetLookup } from '@app/db';
import { Inject, Injectable } from '@nestjs/common';
import { BatchQueue } from './batch-queue.js';

/** Reads lock nothing: several batches may be in flight, unlike admission's, which take turns on a tenant's counter row. */
const READS_IN_FLIGHT = 4;

interface EncodedLookup {
  /** The lookup as a key: submissions naming the same things share one row of the read. */
  json: string;
  lookup: TargetLookup;
}

/**
 * The read that validates a job submission (its model, dataset, version or alias), batched as its
 * admission is: the submissions that arrive together read what they name in one statement
 * (ModelRegistry.jobTargets), and those that name the same things share one row of it.
 */
@Injectable()
export class JobTargetsLoader {
  private readonly queue: BatchQueue<EncodedLookup, JobTargets>;

  constructor(@Inject(APP_CONFIG) config: AppConfig, registry: ModelRegistry) {
    this.queue = new BatchQueue(
      {
        windowMs: 0,
        maxBatch: config.admissionMaxBatch,
        maxBatchBytes: config.admissionMaxBatchBytes,
        concurrency: READS_IN_FLIGHT,
      },
      async (batch) => {
        const rows = new Map<string, number>();
        const unique: TargetLookup[] = [];
        for (const { json, lookup } of batch) {
          if (rows.has(json)) continue;
          rows.set(json, unique.length);
          unique.push(lookup);
        }
        const found = await registry.jobTargets(unique);
        return batch.map(({ json }) => found[rows.get(json)!]);
      },
      isDatabaseUnavailable,
    );
  }

  load(lookup: TargetLookup): Promise<JobTargets> {
    const { tenantId, model, datasetId = null, version = null, alias = null } = lookup;
    return this.queue.submit({ json: JSON.stringify([tenantId, model, datasetId, version, alias]), lookup });
  }
}
