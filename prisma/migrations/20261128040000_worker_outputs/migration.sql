-- AlterTable: whether the worker's backend runs on a GPU (tfjs-node-gpu with a device, or WORKER_FAKE_GPU in tests)
ALTER TABLE "worker_heartbeats" ADD COLUMN "gpu" BOOLEAN NOT NULL DEFAULT false;

-- CreateTable: pages of large job outputs (inference predictions beyond the first page)
CREATE TABLE "job_outputs" (
    "job_id" TEXT NOT NULL,
    "page" INTEGER NOT NULL,
    "data" JSONB NOT NULL,

    CONSTRAINT "job_outputs_pkey" PRIMARY KEY ("job_id","page")
);

-- AddForeignKey
ALTER TABLE "job_outputs" ADD CONSTRAINT "job_outputs_job_id_fkey" FOREIGN KEY ("job_id") REFERENCES "jobs"("id") ON DELETE CASCADE ON UPDATE CASCADE;
