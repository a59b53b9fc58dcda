-- CreateTable: a dataset's features from a foundation model (transfer learning), computed once and reused
CREATE TABLE "feature_sets" (
    "id" TEXT NOT NULL,
    "dataset_id" TEXT NOT NULL,
    "tenant_id" TEXT NOT NULL,
    "base_id" TEXT NOT NULL,
    "base_sha256" TEXT NOT NULL,
    "preprocessing" TEXT NOT NULL,
    "rows" INTEGER NOT NULL,
    "width" INTEGER NOT NULL,
    "bytes" BIGINT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "feature_sets_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "feature_chunks" (
    "set_id" TEXT NOT NULL,
    "seq" INTEGER NOT NULL,
    "rows" INTEGER NOT NULL,
    "data" BYTEA NOT NULL,

    CONSTRAINT "feature_chunks_pkey" PRIMARY KEY ("set_id","seq")
);

-- CreateIndex
CREATE UNIQUE INDEX "feature_sets_dataset_id_base_id_base_sha256_preprocessing_key" ON "feature_sets"("dataset_id", "base_id", "base_sha256", "preprocessing");

-- CreateIndex
CREATE INDEX "feature_sets_last_used_at_idx" ON "feature_sets"("last_used_at");

-- AddForeignKey
ALTER TABLE "feature_sets" ADD CONSTRAINT "feature_sets_dataset_id_fkey" FOREIGN KEY ("dataset_id") REFERENCES "datasets"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "feature_chunks" ADD CONSTRAINT "feature_chunks_set_id_fkey" FOREIGN KEY ("set_id") REFERENCES "feature_sets"("id") ON DELETE CASCADE ON UPDATE CASCADE;
