-- CreateEnum
CREATE TYPE "Task" AS ENUM ('classification', 'regression', 'text-classification');

-- CreateTable
CREATE TABLE "datasets" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "task" "Task" NOT NULL,
    "label" TEXT NOT NULL,
    "text_field" TEXT,
    "format" TEXT NOT NULL,
    "rows" INTEGER NOT NULL,
    "columns" JSONB NOT NULL,
    "bytes" BIGINT NOT NULL,
    "sha256" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "datasets_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "dataset_chunks" (
    "dataset_id" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "rows" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "dataset_chunks_pkey" PRIMARY KEY ("dataset_id","seq")
);

-- CreateTable
CREATE TABLE "models" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "task" "Task" NOT NULL,
    "description" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "models_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "model_versions" (
    "id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "model_id" TEXT NOT NULL,
    "number" INTEGER NOT NULL,
    "metrics" JSONB NOT NULL DEFAULT '{}',
    "architecture" JSONB NOT NULL,
    "hyperparameters" JSONB NOT NULL DEFAULT '{}',
    "input_schema" JSONB NOT NULL,
    "labels" JSONB,
    "parameters" INTEGER NOT NULL,
    "bytes" BIGINT NOT NULL,
    "sha256" TEXT NOT NULL,
    "backend" TEXT NOT NULL,
    "training_job_id" TEXT,
    "dataset_id" TEXT,
    "base_version" INTEGER,
    "source" TEXT NOT NULL DEFAULT 'training',
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "model_versions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "model_artifacts" (
    "version_id" TEXT NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "model_artifacts_pkey" PRIMARY KEY ("version_id")
);

-- CreateTable
CREATE TABLE "model_aliases" (
    "model_id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "versions" JSONB NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "model_aliases_pkey" PRIMARY KEY ("model_id","name")
);

-- CreateIndex
CREATE INDEX "datasets_tenant_id_created_at_idx" ON "datasets"("tenant_id", "created_at");

-- CreateIndex
CREATE INDEX "models_tenant_id_created_at_idx" ON "models"("tenant_id", "created_at");

-- CreateIndex
CREATE UNIQUE INDEX "models_tenant_id_name_key" ON "models"("tenant_id", "name");

-- CreateIndex
CREATE UNIQUE INDEX "model_versions_training_job_id_key" ON "model_versions"("training_job_id");

-- CreateIndex
CREATE INDEX "model_versions_tenant_id_model_id_idx" ON "model_versions"("tenant_id", "model_id");

-- CreateIndex
CREATE UNIQUE INDEX "model_versions_model_id_number_key" ON "model_versions"("model_id", "number");

-- AddForeignKey
ALTER TABLE "datasets" ADD CONSTRAINT "datasets_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "dataset_chunks" ADD CONSTRAINT "dataset_chunks_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "models" ADD CONSTRAINT "models_tenant_id_fkey" FOREIGN KEY ("tenant_id") REFERENCES "tenants"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "model_versions" ADD CONSTRAINT "model_versions_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "models"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "model_artifacts" ADD CONSTRAINT "model_artifacts_version_id_fkey" FOREIGN KEY ("version_id") REFERENCES "model_versions"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "model_aliases" ADD CONSTRAINT "model_aliases_model_id_fkey" FOREIGN KEY ("model_id") REFERENCES "models"("id") ON DELETE CASCADE ON UPDATE CASCADE;
